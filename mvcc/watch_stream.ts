/**
 * One client stream's watchers (etcd's mvcc watchStream): their IDs, assigned as etcd 3.4 assigns them (the lowest
 * free ID counting up from 0 unless the client chose one), creation, cancellation and progress requests. Results
 * go to the stream's sink, which bounds what it holds.
 */
import { compareBytes } from "./bytes.ts";
import { ErrEmptyWatcherRange, ErrWatcherDuplicateID, ErrWatcherNotExist } from "./errors.ts";
import type { WatchableStore, WatchFilters } from "./watchable_store.ts";
import type { Watcher, WatchSink } from "./watcher_group.ts";

/** The watch_id a client leaves unset: the stream picks one (clientv3.AutoWatchID). */
export const AUTO_WATCH_ID = 0n;

export class WatchStream {
  readonly #watchers = new Map<bigint, Watcher>();
  #nextId = 0n;
  #closed = false;

  constructor(private readonly store: WatchableStore, private readonly sink: WatchSink) {
    store.streams++;
  }

  /** Watchers on the stream. */
  get size(): number {
    return this.#watchers.size;
  }

  /** The store's current revision. */
  get rev(): number {
    return this.store.kv.rev;
  }

  /**
   * Creates a watcher (end: see WatchableStore.watch) and returns its ID. Throws ErrEmptyWatcherRange for a range
   * that holds no key, ErrWatcherDuplicateID for a client-chosen ID in use.
   */
  watch(id: bigint, key: Uint8Array, end: Uint8Array | undefined, startRev: number, filters?: WatchFilters): bigint {
    if (end !== undefined && end.length !== 0 && compareBytes(key, end) >= 0) throw ErrEmptyWatcherRange;
    if (this.#closed) throw ErrEmptyWatcherRange; // etcd's answer on a closed stream too
    if (id === AUTO_WATCH_ID) {
      while (this.#watchers.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    } else if (this.#watchers.has(id)) {
      throw ErrWatcherDuplicateID;
    }
    this.#watchers.set(id, this.store.watch(id, key, end, startRev, this.sink, filters));
    return id;
  }

  /** Cancels watcher id; throws ErrWatcherNotExist when there is none. */
  cancel(id: bigint): void {
    const w = this.#watchers.get(id);
    if (w === undefined || this.#closed) throw ErrWatcherNotExist;
    this.store.cancel(w);
    this.#watchers.delete(id);
  }

  requestProgress(id: bigint): void {
    const w = this.#watchers.get(id);
    if (w !== undefined) this.store.progress(w);
  }

  /** The sink has room again: parked watchers are retried. */
  drained(): void {
    this.store.retryVictims(this.sink);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.store.streams--;
    for (const w of this.#watchers.values()) this.store.cancel(w);
    this.#watchers.clear();
  }
}
