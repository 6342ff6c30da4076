/**
 * Watchers and the groups that find them by key (etcd's watcher_group.go): single-key watchers in a map, range and
 * prefix watchers in an interval tree, so matching an event costs O(log n + matches) whatever the number of watchers.
 * Keys are latin1 strings (one char per byte), whose order is the byte order.
 */
import { type Event, Event_EventType } from "../rpc/gen/mvccpb/kv_pb.ts";
import { IntervalTree } from "./interval_tree.ts";
import { type Linked, LinkedList } from "./linked_list.ts";

/** What a watcher hands its stream: events of one or more whole revisions, a progress mark, or a compaction. */
export interface WatchResult {
  /** Whose result it is (its id is the client's watch ID; the stream keys its bookkeeping by the object). */
  watcher: Watcher;
  /** Empty for a progress notification or a compaction. */
  events: Event[];
  /** The store revision the watcher is complete up to. */
  revision: number;
  /** Set when the watcher was canceled because its start revision was compacted away. */
  compactRevision: number;
}

/**
 * A watch stream's side of delivery: a watcher's events of whole revisions up to `revision` (none: a progress mark,
 * or with compactRevision set, the watcher's end), as WatchResult's fields. False when its bounded queue is full (the
 * watcher is then parked). Parts rather than a result object: most of a fan-out joins results already queued.
 */
export interface WatchSink {
  send(w: Watcher, events: Event[], revision: number, compactRevision: number): boolean;
}

export type WatcherState = "synced" | "unsynced" | "victim" | "compacted" | "canceled";

/** What a group finds by key: a key (end undefined), [key, end), or key onwards (end ""). */
export interface Keyed extends Linked {
  readonly key: string;
  readonly end: string | undefined;
}

export class Watcher implements Keyed {
  state: WatcherState = "synced";
  // links of the one list the watcher is on: a synced group's, the unsynced list or its stream's parked list
  prev: Linked | undefined = undefined;
  next: Linked | undefined = undefined;
  list: LinkedList<Linked> | undefined = undefined;
  /** Events of revisions below minRev have been delivered (or are held in `parked`). */
  minRev: number;
  /** A victim's undelivered result, retried when its stream has room (none: its events are all from minRev on). */
  parked: WatchResult | undefined;
  /**
   * The sink's, opaque to the store: its newest queued result for this watcher, which later events may join while
   * it waits (kept here rather than in a map of the sink's, which thousands of watchers churned).
   */
  queued: object | undefined = undefined;

  constructor(
    readonly id: bigint,
    /** The key, or the range's start. */
    readonly key: string,
    /** undefined: the single key; "": every key from `key` on; else the range's exclusive end. */
    readonly end: string | undefined,
    startRev: number,
    readonly sink: WatchSink,
    readonly noPut: boolean,
    readonly noDelete: boolean,
  ) {
    this.minRev = startRev;
  }

  /**
   * Hands events (none: a progress mark) to the stream after the filters; events all filtered out count as delivered
   * (etcd's watcher.send). Returns false when the stream is full.
   */
  send(events: Event[], revision: number): boolean {
    if ((this.noPut || this.noDelete) && events.length > 0) {
      events = events.filter((e) => (e.type === Event_EventType.PUT ? !this.noPut : !this.noDelete));
      if (events.length === 0) return true;
    }
    return this.sink.send(this, events, revision, 0);
  }
}

/** Watchers (or other Keyed members) found by key; each member is on one of the group's lists. */
export class WatcherGroup<T extends Keyed = Watcher> {
  readonly #byKey = new Map<string, LinkedList<T>>();
  readonly #ranges = new IntervalTree<LinkedList<T>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(w: T): void {
    let list: LinkedList<T> | undefined;
    if (w.end === undefined) {
      list = this.#byKey.get(w.key);
      if (list === undefined) this.#byKey.set(w.key, list = new LinkedList(this));
    } else {
      list = this.#ranges.find(w.key, w.end);
      if (list === undefined) this.#ranges.insert(w.key, w.end, list = new LinkedList(this));
    }
    list.push(w);
    this.#size++;
  }

  /** Removes w; false when it is not in this group. */
  delete(w: T): boolean {
    const list = w.list as LinkedList<T> | undefined;
    if (list === undefined || list.owner !== this) return false;
    list.delete(w);
    this.#size--;
    if (list.size === 0) {
      if (w.end === undefined) this.#byKey.delete(w.key);
      else this.#ranges.delete(w.key, w.end);
    }
    return true;
  }

  /** Calls fn with every member whose key or range holds key; fn must not change the group. */
  forEachWatching(key: string, fn: (w: T) => void): void {
    this.#byKey.get(key)?.forEach(fn);
    if (this.#ranges.size > 0) this.#ranges.stab(key, (list) => list.forEach(fn));
  }

  /** Every member, for the rare walks over all of them (a snapshot restored). */
  members(): T[] {
    const all: T[] = [];
    const collect = (list: LinkedList<T>) => list.forEach((w) => all.push(w));
    this.#byKey.forEach(collect);
    this.#ranges.forEach(collect);
    return all;
  }
}
