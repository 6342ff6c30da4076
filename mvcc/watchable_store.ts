/**
 * The watchable store (etcd's watchable_store.go) over a KVStore. Watchers live in one of three places:
 * - synced: caught up; each committed write transaction's changes are matched against them by key (notify);
 * - unsynced: behind (a historical start revision, or back from being parked); a background pass catches them up
 *   from the store's history in bounded batches, then moves them to synced;
 * - victims: their stream's queue was full; they wait (with the refused result, or none when its events are still in
 *   the history from minRev) until that stream has room, then go on synced or unsynced.
 *   A write never waits for a watcher.
 * A watcher receives each revision's events together, in revision order, exactly once: minRev is the first revision
 * it has not been handed yet, and every path hands over whole revisions from minRev on and then advances it.
 */
import { type Event, Event_EventType } from "../rpc/gen/mvccpb/kv_pb.ts";
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { setImmediate } from "node:timers";
import { latin1 } from "./bytes.ts";
import type { KVStore } from "./kvstore.ts";
import { type Linked, LinkedList } from "./linked_list.ts";
import { type Keyed, Watcher, WatcherGroup, type WatchResult, type WatchSink } from "./watcher_group.ts";

/** Unsynced watchers caught up per pass (etcd's maxWatchersPerSync). */
const MAX_WATCHERS_PER_SYNC = 512;
/**
 * Revisions handed to one watcher per pass: etcd's watchBatchMaxRevs, or CROWDED_BATCH_REVS while more than
 * CROWDED_WATCHERS are behind, unsynced or parked (a client that fell behind on a wide fan-out): every batch becomes
 * one response, and one frame, per watcher, so a tenth of the batch keeps a crowd's catch-up from holding hundreds of
 * MiB at once (10k watchers behind: peak RSS ~125 MiB instead of 100-430). A pass stops scanning once every batch is
 * full.
 */
const WATCH_BATCH_MAX_REVS = 1000;
const CROWDED_BATCH_REVS = 100;
const CROWDED_WATCHERS = 64;
/** Revisions of history scanned per pass, so a pass costs O(window) however far behind a watcher is. */
const SYNC_WINDOW_REVS = 10_000;
/** Wait before retrying a pass that could hand nothing over (etcd's sync loop period). */
const SYNC_RETRY_MS = 100;

export interface WatchFilters {
  noPut?: boolean;
  noDelete?: boolean;
}

/** Unsynced watchers with the same range and minRev: they get the same events, found once for all of them. */
class Cohort implements Keyed {
  prev: Linked | undefined = undefined;
  next: Linked | undefined = undefined;
  list: LinkedList<Linked> | undefined = undefined;
  readonly watchers: Watcher[] = [];
  // the batch of this pass
  events: Event[] = [];
  revs = 0;
  lastRev = 0;
  /** The first revision left for the next pass (the batch was full), or 0. */
  moreRev = 0;

  constructor(readonly key: string, readonly end: string | undefined, readonly minRev: number) {}
}

export function toEvent(kv: KeyValue): Event {
  // deletions are tombstones: no create revision (etcd's watchableStoreTxnWrite.End)
  const type = kv.createRevision === 0n ? Event_EventType.DELETE : Event_EventType.PUT;
  return { $typeName: "mvccpb.Event", type, kv, prevKv: undefined };
}

export class WatchableStore {
  readonly kv: KVStore;
  readonly #synced = new WatcherGroup();
  readonly #unsynced = new LinkedList<Watcher>();
  readonly #victims = new Map<WatchSink, LinkedList<Watcher>>();
  /**
   * Watchers a write's fan-out found with a full stream (see #notify), in the first entries: never truncated, as an
   * array emptied by `length = 0` gives its storage up and regrows it, tens of KiB per write in a wide fan-out.
   */
  readonly #full: (Watcher | undefined)[] = [];
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #syncScheduled = false;
  readonly #stopListening: () => void;
  #closed = false;
  /** Open watch streams (WatchStream counts itself in and out). */
  streams = 0;

  constructor(kv: KVStore) {
    this.kv = kv;
    this.#stopListening = kv.addWriteListener((changes, rev) => this.#notify(changes, rev));
  }

  /** Watchers in each place, and the streams holding parked ones, for metrics and tests. */
  get counts(): { streams: number; synced: number; unsynced: number; victims: number; parkedStreams: number } {
    let victims = 0;
    for (const list of this.#victims.values()) victims += list.size;
    const parkedStreams = this.#victims.size;
    return { streams: this.streams, synced: this.#synced.size, unsynced: this.#unsynced.size, victims, parkedStreams };
  }

  /**
   * A watcher on key (end undefined), [key, end), or key onwards (end empty) from startRev (0: the next revision).
   * Range checks are the caller's (WatchStream).
   */
  watch(
    id: bigint,
    key: Uint8Array,
    end: Uint8Array | undefined,
    startRev: number,
    sink: WatchSink,
    filters: WatchFilters = {},
  ): Watcher {
    if (this.#closed) throw new Error("watchable store: closed");
    const w = new Watcher(
      id,
      latin1(key),
      end === undefined ? undefined : latin1(end),
      startRev,
      sink,
      filters.noPut ?? false,
      filters.noDelete ?? false,
    );
    const cur = this.kv.rev;
    if (startRev === 0 || startRev > cur) {
      w.minRev = Math.max(cur + 1, startRev);
      this.#synced.add(w);
    } else {
      w.state = "unsynced";
      this.#unsynced.push(w);
      this.#scheduleSync(0);
    }
    return w;
  }

  cancel(w: Watcher): void {
    switch (w.state) {
      case "synced":
        this.#synced.delete(w);
        break;
      case "unsynced":
        this.#unsynced.delete(w);
        break;
      case "victim": {
        const parked = this.#victims.get(w.sink);
        parked?.delete(w);
        // the last one gone: the stream (closing, maybe) is not kept by an empty list
        if (parked?.size === 0) this.#victims.delete(w.sink);
        w.parked = undefined;
        break;
      }
    }
    w.state = "canceled";
  }

  /** Sends w the current revision when it is caught up (etcd's progress: a busy watcher needs none). */
  progress(w: Watcher): void {
    if (w.state !== "synced") return;
    w.send([], this.kv.rev);
  }

  /** sink has room again: its parked watchers hand over their results, in the order they were parked. */
  retryVictims(sink: WatchSink): void {
    const parked = this.#victims.get(sink);
    if (parked === undefined) return;
    const cur = this.kv.rev;
    for (let w = parked.head; w !== undefined; w = parked.head) {
      if (w.parked !== undefined && !w.send(w.parked.events, w.parked.revision)) return;
      parked.delete(w);
      w.parked = undefined;
      if (w.minRev <= cur) {
        w.state = "unsynced";
        this.#unsynced.push(w);
        this.#scheduleSync(0);
      } else {
        w.state = "synced";
        this.#synced.add(w);
      }
    }
    this.#victims.delete(sink);
  }

  /**
   * The store was restored from a leader's snapshot (etcd's watchableStore.Restore): its revision jumped, so every
   * synced watcher still short of it catches up from the new history as an unsynced one (or learns it was compacted).
   */
  restored(): void {
    const cur = this.kv.rev;
    for (const w of this.#synced.members()) {
      if (w.minRev > cur) continue;
      this.#synced.delete(w);
      w.state = "unsynced";
      this.#unsynced.push(w);
    }
    this.#scheduleSync(0);
  }

  close(): void {
    this.#closed = true;
    this.#stopListening();
    clearTimeout(this.#syncTimer);
  }

  /** One committed write transaction: its changes, all of revision rev, go to the synced watchers they match. */
  #notify(changes: KeyValue[], rev: number): void {
    if (this.#synced.size === 0) return;
    // watchers are parked after the matching: parking changes the group being walked. A refused watcher is parked
    // without its events: they are in the history, and a wide fan-out into a full stream would otherwise make a
    // result per watcher per write only to hold it
    const full = this.#full;
    let nFull = 0;
    const deliver = (w: Watcher, events: Event[]) => {
      if (w.send(events, rev)) w.minRev = rev + 1;
      else full[nFull++] = w;
    };
    if (changes.length === 1) {
      // one change (a put, a single-key delete): every watcher gets the same one-event array
      const kv = changes[0];
      let events: Event[] | undefined;
      this.#synced.forEachWatching(latin1(kv.key), (w) => {
        if (rev >= w.minRev) deliver(w, events ??= [toEvent(kv)]);
      });
    } else {
      // a watcher's events: the Event alone while it has one (its array is then shared by every watcher with
      // just that event), else an array of its own
      const batches = new Map<Watcher, Event | Event[]>();
      for (const kv of changes) {
        let ev: Event | undefined;
        this.#synced.forEachWatching(latin1(kv.key), (w) => {
          if (rev < w.minRev) return;
          ev ??= toEvent(kv);
          const got = batches.get(w);
          if (got === undefined) batches.set(w, ev);
          else if (Array.isArray(got)) got.push(ev);
          else batches.set(w, [got, ev]);
        });
      }
      const alone = new Map<Event, Event[]>();
      for (const [w, got] of batches) {
        let events = Array.isArray(got) ? got : alone.get(got);
        if (events === undefined) alone.set(got as Event, events = [got as Event]);
        deliver(w, events);
      }
    }
    for (let i = 0; i < nFull; i++) {
      const w = full[i]!;
      full[i] = undefined;
      this.#synced.delete(w);
      this.#park(w, undefined);
    }
  }

  /** Parks w with the result its stream refused, or with none when its events are still ahead of minRev. */
  #park(w: Watcher, r: WatchResult | undefined): void {
    w.state = "victim";
    w.parked = r;
    let list = this.#victims.get(w.sink);
    if (list === undefined) this.#victims.set(w.sink, list = new LinkedList());
    list.push(w);
  }

  #scheduleSync(delayMs: number): void {
    if (this.#syncScheduled || this.#closed) return;
    this.#syncScheduled = true;
    const run = () => {
      this.#syncScheduled = false;
      this.#syncTimer = undefined;
      this.#syncWatchers();
    };
    // setImmediate: nested setTimeout(0)s are clamped to 4 ms, which a long catch-up would pay on every pass
    if (delayMs === 0) setImmediate(run);
    else this.#syncTimer = setTimeout(run, delayMs);
  }

  /**
   * One catch-up pass (etcd's syncWatchers): up to MAX_WATCHERS_PER_SYNC unsynced watchers get the events of at
   * most SYNC_WINDOW_REVS revisions of history from their minRev, at most WATCH_BATCH_MAX_REVS (or, crowded,
   * CROWDED_BATCH_REVS) revisions each;
   * those that reach the current revision become synced. A watcher behind the compacted revision is told so and
   * dropped.
   */
  #syncWatchers(): void {
    if (this.#closed || this.#unsynced.size === 0) return;
    const curRev = this.kv.rev, compactRev = this.kv.compactMainRev;
    // watchers with the same range and minRev get the same events: their cohort (in `group`) stands for all, so
    // many clients catching up on one prefix cost one scan and share one events array
    const group = new WatcherGroup<Cohort>();
    // by start revision, then range start, then range end: no key strings built per watcher
    const byRev = new Map<number, Map<string, Map<string | undefined, Cohort>>>();
    const cohorts: Cohort[] = [];
    let chosen = 0, minRev = Infinity;
    for (let w = this.#unsynced.head, next: Watcher | undefined; w !== undefined; w = next) {
      if (chosen >= MAX_WATCHERS_PER_SYNC) break;
      next = w.next as Watcher | undefined;
      if (w.minRev < compactRev) {
        if (w.sink.send(w, [], 0, compactRev)) {
          this.#unsynced.delete(w);
          w.state = "compacted";
        }
        continue;
      }
      chosen++;
      let byKey = byRev.get(w.minRev);
      if (byKey === undefined) byRev.set(w.minRev, byKey = new Map());
      let byEnd = byKey.get(w.key);
      if (byEnd === undefined) byKey.set(w.key, byEnd = new Map());
      let cohort = byEnd.get(w.end);
      if (cohort === undefined) {
        byEnd.set(w.end, cohort = new Cohort(w.key, w.end, w.minRev));
        cohorts.push(cohort);
        group.add(cohort);
      }
      cohort.watchers.push(w);
      if (w.minRev < minRev) minRev = w.minRev;
    }
    if (chosen > 0) this.#catchUp(group, cohorts, minRev, curRev);
    if (this.#unsynced.size > 0) this.#scheduleSync(chosen > 0 ? 0 : SYNC_RETRY_MS);
  }

  #catchUp(group: WatcherGroup<Cohort>, cohorts: Cohort[], minRev: number, curRev: number): void {
    const windowEnd = Math.min(curRev, minRev + SYNC_WINDOW_REVS - 1);
    const behind = this.counts;
    const crowded = behind.unsynced + behind.victims > CROWDED_WATCHERS;
    const maxRevs = crowded ? CROWDED_BATCH_REVS : WATCH_BATCH_MAX_REVS;
    let full = 0; // cohorts whose batch is full: when all are, the rest of the window is not scanned
    this.kv.forEachChange(minRev, windowEnd, (kv) => {
      const rev = Number(kv.modRevision);
      let ev: Event | undefined;
      group.forEachWatching(latin1(kv.key), (c) => {
        if (rev < c.minRev || c.moreRev !== 0) return;
        if (rev !== c.lastRev) {
          if (c.revs === maxRevs) {
            c.moreRev = rev;
            full++;
            return;
          }
          c.revs++;
          c.lastRev = rev;
        }
        ev ??= toEvent(kv);
        c.events.push(ev);
      });
      return full < cohorts.length;
    });
    for (const c of cohorts) {
      // complete up to here: the header says so, and a client resuming from it misses nothing
      const upTo = c.moreRev !== 0 ? c.moreRev - 1 : windowEnd;
      for (const w of c.watchers) {
        w.minRev = upTo + 1;
        if (c.revs > 0 && !w.send(c.events, upTo)) {
          this.#unsynced.delete(w);
          this.#park(w, { watcher: w, events: c.events, revision: upTo, compactRevision: 0 });
          continue;
        }
        if (w.minRev > curRev) {
          this.#unsynced.delete(w);
          w.state = "synced";
          this.#synced.add(w);
        }
      }
    }
  }
}
