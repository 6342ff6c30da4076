/**
 * Watchers and the groups that find them by key (etcd's watcher_group.go): single-key watchers in a map, range and
 * prefix watchers in an interval tree, so matching an event costs O(log n + matches) whatever the number of watchers.
 * Keys are latin1 strings (one char per byte), whose order is the byte order.
 */
import { type Event, Event_EventType } from "../rpc/gen/mvccpb/kv_pb.ts";
import { IntervalTree } from "./interval_tree.ts";

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

export class Watcher {
  state: WatcherState = "synced";
  /** Events of revisions below minRev have been delivered (or are held in `parked`). */
  minRev: number;
  /** A victim's undelivered result, retried when its stream has room (none: its events are all from minRev on). */
  parked: WatchResult | undefined;

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

export class WatcherGroup {
  readonly watchers = new Set<Watcher>();
  readonly #byKey = new Map<string, Set<Watcher>>();
  readonly #ranges = new IntervalTree<Set<Watcher>>();

  get size(): number {
    return this.watchers.size;
  }

  add(w: Watcher): void {
    if (this.watchers.has(w)) throw new Error("watcher group: watcher added twice");
    this.watchers.add(w);
    if (w.end === undefined) {
      let set = this.#byKey.get(w.key);
      if (set === undefined) this.#byKey.set(w.key, set = new Set());
      set.add(w);
      return;
    }
    const set = this.#ranges.find(w.key, w.end);
    if (set !== undefined) set.add(w);
    else this.#ranges.insert(w.key, w.end, new Set([w]));
  }

  /** Removes w; false when it is not in this group. */
  delete(w: Watcher): boolean {
    if (!this.watchers.delete(w)) return false;
    if (w.end === undefined) {
      const set = this.#byKey.get(w.key)!;
      set.delete(w);
      if (set.size === 0) this.#byKey.delete(w.key);
      return true;
    }
    const set = this.#ranges.find(w.key, w.end);
    if (set === undefined || !set.delete(w)) throw new Error("watcher group: range watcher missing from its interval");
    if (set.size === 0) this.#ranges.delete(w.key, w.end);
    return true;
  }

  /** Calls fn with every watcher whose key or range holds key. */
  forEachWatching(key: string, fn: (w: Watcher) => void): void {
    const set = this.#byKey.get(key);
    if (set !== undefined) { for (const w of set) fn(w); }
    if (this.#ranges.size > 0) this.#ranges.stab(key, (ws) => ws.forEach(fn));
  }
}
