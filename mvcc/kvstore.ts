/**
 * The MVCC key-value store (etcd's mvcc.store): a treeIndex in memory over the "key" bucket of the backend,
 * whose keys are revisions and values encoded KeyValues. Revisions are JS numbers internally; KeyValue objects
 * are created once per change (a restored revision's when first read, see StoredRev) and shared, immutable, by every
 * read.
 *
 * The backend keeps the "key" bucket only in its log (it is detached): the index holds every stored revision, so
 * the bucket's bytes are re-encoded from it (a restored revision's taken as read) when the backend needs them (hash,
 * defrag) instead of kept twice.
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { type Backend, BUCKET, type BucketContent } from "./backend.ts";
import { peekLastPut } from "./backend_log.ts";
import { EMPTY_BYTES } from "./bytes.ts";
import { crc32c, crc32cUpdate } from "../wal/crc32c.ts";
import { ErrCompacted, ErrFutureRev } from "./errors.ts";
import { TreeIndex } from "./index.ts";
import { type IndexRev, KeyIndex } from "./key_index.ts";
import {
  decodeKeyValue,
  newKeyValue,
  scanKeyValue,
  scanned,
  storedValue,
  storedValueSize,
  writeStoredValue,
} from "./kv_codec.ts";
import { StoredRev } from "./stored_rev.ts";
import { type RangeOptions, type RangeResult, TxnRead, TxnWrite } from "./kvstore_txn.ts";
import {
  bytesToRev,
  bytesToUint64,
  MARKED_REV_BYTES_LEN,
  REV_BYTES_LEN,
  revKey,
  revToBytes,
  uint64ToBytes,
  writeRev,
} from "./revision.ts";
import type { BoltBucket } from "./bolt_image.ts";
import { forEachRevision, ReplayedRevisions } from "./replayed_revisions.ts";

const enc = new TextEncoder();
const CONSISTENT_INDEX_KEY = enc.encode("consistent_index");
const TERM_KEY = enc.encode("term");
const SCHEDULED_COMPACT_KEY = enc.encode("scheduledCompactRev");
const FINISHED_COMPACT_KEY = enc.encode("finishedCompactRev");
const KEY_BUCKET_NAME = enc.encode(BUCKET.key);

/** Keys the lease module attaches to leases; called as keys gain, change or lose a lease. */
export interface LeaseAttacher {
  attach(lease: bigint, key: Uint8Array): void;
  detach(lease: bigint, key: Uint8Array): void;
}

export interface KVStoreOptions {
  lessor?: LeaseAttacher;
  /** Revisions deleted from the backend per compaction batch (etcd default 1000). */
  compactionBatchLimit?: number;
  /** Pause between compaction batches, in ms (etcd: 10). */
  compactionSleepMs?: number;
}

/** Called after each write transaction with changes, with its changes and the new store revision. */
export type WriteListener = (changes: KeyValue[], rev: number) => void;

function compareRevs(a: IndexRev, b: IndexRev): number {
  return a.main - b.main || a.sub - b.sub;
}

/** The "key" bucket key of a revision: tombstones (version 0) carry the mark. */
function storedKey(r: IndexRev): Uint8Array {
  return revToBytes(r.main, r.sub, isStoredTombstone(r));
}

/** Whether a revision is stored as a tombstone (a restored one stands for a live key). */
function isStoredTombstone(r: IndexRev): boolean {
  return !(r instanceof StoredRev) && r.kv.version === 0n;
}

/** The "key" bucket value of a revision: a restored one's as it was read. */
function storedBytes(r: IndexRev): Uint8Array {
  return r instanceof StoredRev ? r.stored() : storedValue(r.kv);
}

function storedBytesSize(r: IndexRev): number {
  return r instanceof StoredRev ? r.storedSize : storedValueSize(r.kv);
}

/**
 * The "key" bucket for a bbolt file: the revisions (in key order) are held, each one's key and value written into its
 * page from the revision itself, as the backend log has them.
 */
function revisionsBucket(name: Uint8Array, revs: IndexRev[]): BoltBucket {
  // sizes asked for twice (the plan, the page): worked out once
  const valueSizes = new Uint32Array(revs.length);
  const tombstones = new Uint8Array(revs.length);
  for (let i = 0; i < revs.length; i++) {
    if (i > 0 && compareRevs(revs[i - 1], revs[i]) >= 0) {
      throw new Error("mvcc: stored revisions out of order or repeated");
    }
    valueSizes[i] = storedBytesSize(revs[i]);
    tombstones[i] = isStoredTombstone(revs[i]) ? 1 : 0;
  }
  return {
    name,
    count: revs.length,
    keySize: (i) => tombstones[i] === 1 ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN,
    valueSize: (i) => valueSizes[i],
    writeKey: (i, buf, pos) => {
      writeRev(buf.subarray(pos), revs[i].main, revs[i].sub, tombstones[i] === 1);
    },
    writeValue: (i, buf, pos) => {
      const r = revs[i];
      if (r instanceof StoredRev) buf.set(r.stored(), pos);
      else writeStoredValue(buf, pos, r.kv);
    },
  };
}

/** A change in the store's history: a write's KeyValue, or a restored revision (its KeyValue decoded when read). */
type Change = KeyValue | StoredRev;

function changeRev(c: Change): number {
  return c instanceof StoredRev ? c.main : Number(c.modRevision);
}

/**
 * The consistent index the backend log at `path` holds, read from its end without replaying it (see peekLastPut): 0
 * when it holds none, or none for certain. What a replay of that log would give.
 */
export async function consistentIndexIn(path: string): Promise<number> {
  const ci = await peekLastPut(path, BUCKET.meta, CONSISTENT_INDEX_KEY);
  return ci === undefined ? 0 : bytesToUint64(ci);
}

export class KVStore {
  /** Replaced, with the index, only by restore(). */
  backend: Backend;
  index = new TreeIndex();
  readonly lessor: LeaseAttacher | undefined;
  readonly compactionBatchLimit: number;
  readonly compactionSleepMs: number;

  #currentRev = 1;
  #compactMainRev = -1;
  #consistentIndex = 0;
  /** The consistent index last written to the backend. */
  #savedIndex = 0;
  #term = 0;
  #writing = false;
  #closed = false;
  #compactions: Promise<void> = Promise.resolve();
  #listeners = new Set<WriteListener>();
  /** Revisions the running compaction dropped from the index, in order; those from #removedUpTo still in the backend. */
  #removing: IndexRev[] = [];
  #removedUpTo = 0;
  /**
   * Every change since the compacted revision in revision order: what a watcher that is behind catches up from,
   * without a scan of the keyspace. A restart's come first, read where the replay left them (#restored, from position
   * #restoredHead on: nothing kept per revision), then #history's from #historyHead on (the index's own KeyValues;
   * restored revisions, shared, when the replay gave no positions).
   */
  #restored: ReplayedRevisions | null = null;
  #restoredHead = 0;
  #history: Change[] = [];
  #historyHead = 0;

  private constructor(backend: Backend, opts: KVStoreOptions) {
    this.backend = backend;
    this.lessor = opts.lessor;
    this.compactionBatchLimit = opts.compactionBatchLimit ?? 1000;
    this.compactionSleepMs = opts.compactionSleepMs ?? 10;
  }

  /**
   * Builds the store over `backend`, rebuilding the index from the "key" bucket. An unfinished compaction found
   * there is resumed in the background (see compactionDone()).
   */
  static open(backend: Backend, opts: KVStoreOptions = {}): KVStore {
    const s = new KVStore(backend, opts);
    s.restore(backend);
    return s;
  }

  /**
   * Makes the store `backend`'s, a backend received with a leader's snapshot (etcd's store.Restore): the index and
   * the history are rebuilt from it, keys attached to the (already recovered) lessor's leases; write listeners stay.
   * The caller has closed the store (its compaction stopped) and the old backend.
   */
  restore(backend: Backend): void {
    this.backend = backend;
    this.#currentRev = 1;
    this.#compactMainRev = -1;
    this.#consistentIndex = 0;
    this.#savedIndex = 0;
    this.#term = 0;
    backend.setBeforeCommit(() => this.#saveIndex());
    this.#removing = [];
    this.#removedUpTo = 0;
    this.#history = [];
    this.#historyHead = 0;
    this.#compactions = Promise.resolve();
    this.#closed = false;
    const replayed = backend.detach(BUCKET.key, {
      forEach: (fn) => this.#forEachStored(fn),
      boltBucket: (name) => revisionsBucket(name, this.#storedRevisions()),
    });
    this.#restored = replayed instanceof ReplayedRevisions ? replayed : null;
    this.#restoredHead = 0;
    this.index = new TreeIndex(this.#restored);
    this.#restore(replayed);
  }

  /** The revision of the last write transaction (1 for an empty store). */
  get rev(): number {
    return this.#currentRev;
  }

  /** The last compacted revision (-1 if never compacted). */
  get compactMainRev(): number {
    return this.#compactMainRev;
  }

  /** The raft index of the last applied entry saved with the data (0 if none). */
  get consistentIndex(): number {
    return this.#consistentIndex;
  }

  get term(): number {
    return this.#term;
  }

  /** Sets the raft index and term saved with the backend's next commit. */
  setConsistentIndex(index: number, term: number): void {
    this.#consistentIndex = index;
    this.#term = term;
  }

  read(): TxnRead {
    return new TxnRead(this);
  }

  /** Opens the write transaction; there can be only one, and it must be ended synchronously. */
  write(): TxnWrite {
    if (this.#closed) throw new Error("mvcc: closed");
    if (this.#writing) throw new Error("mvcc: a write transaction is already open");
    this.#writing = true;
    return new TxnWrite(this);
  }

  /** Reads at the current revision (see TxnRead.range). */
  range(key: Uint8Array, end?: Uint8Array, ro: RangeOptions = {}): RangeResult {
    return this.read().range(key, end, ro);
  }

  /** Puts in its own transaction; returns the new revision. */
  put(key: Uint8Array, value: Uint8Array, lease = 0n): number {
    const t = this.write();
    try {
      return t.put(key, value, lease);
    } finally {
      t.end();
    }
  }

  /** Deletes in its own transaction. */
  deleteRange(key: Uint8Array, end?: Uint8Array): { deleted: number; rev: number } {
    const t = this.write();
    try {
      return t.deleteRange(key, end);
    } finally {
      t.end();
    }
  }

  /** Registers a listener for committed write transactions; returns its removal function. */
  addWriteListener(fn: WriteListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Called by TxnWrite.end(). */
  endWrite(t: TxnWrite): void {
    if (!this.#writing) throw new Error("mvcc: ending a write txn that is not open");
    this.#writing = false;
    if (t.changes.length === 0) return;
    this.#currentRev++;
    for (const kv of t.changes) this.#history.push(kv);
    for (const fn of this.#listeners) fn(t.changes, this.#currentRev);
  }

  /**
   * Calls fn with each change of revisions fromRev..toRev in order (deletions as in TxnWrite.changes), until fn
   * returns false. Revisions below the compacted one are gone: fromRev must be at or above it.
   */
  forEachChange(fromRev: number, toRev: number, fn: (kv: KeyValue) => boolean | void): void {
    if (fromRev < this.#compactMainRev) throw ErrCompacted;
    const r = this.#restored;
    if (r !== null) {
      for (let at = this.#restoredAt(fromRev); at < r.count; at++) {
        if (r.endAt(at) < 0) continue; // deleted by the replay
        if (r.mainAt(at) > toRev || fn(this.#restoredChange(r, at)) === false) return;
      }
    }
    const h = this.#history;
    for (let i = this.#firstChangeAt(fromRev); i < h.length; i++) {
      const c = h[i];
      if (changeRev(c) > toRev || fn(c instanceof StoredRev ? c.kv : c) === false) return;
    }
  }

  /** The history position of the first change at or after rev (binary search; mod revisions never decrease). */
  #firstChangeAt(rev: number): number {
    const h = this.#history;
    let lo = this.#historyHead, hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (changeRev(h[mid]) < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first restored position at or after #restoredHead whose revision is at or after rev (binary search). */
  #restoredAt(rev: number): number {
    const r = this.#restored!;
    let lo = this.#restoredHead, hi = r.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r.mainAt(mid) < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A restored change as TxnWrite.changes had it: a deletion is its key at its revision (etcd stores the key alone). */
  #restoredChange(r: ReplayedRevisions, at: number): KeyValue {
    const kv = decodeKeyValue(r.bufAt(at), r.startAt(at), r.endAt(at));
    return r.isTombstoneAt(at) ? newKeyValue(kv.key, EMPTY_BYTES, 0n, BigInt(r.mainAt(at)), 0n, 0n) : kv;
  }

  /** Drops the history below rev; the array is shortened once the dropped part is the larger half. */
  #trimHistory(rev: number): void {
    if (this.#restored !== null) {
      this.#restoredHead = this.#restoredAt(rev);
      if (this.#restoredHead === this.#restored.count) this.#restored = null;
    }
    this.#historyHead = this.#firstChangeAt(rev);
    if (this.#historyHead * 2 > this.#history.length) {
      this.#history = this.#history.slice(this.#historyHead);
      this.#historyHead = 0;
    }
  }

  /**
   * Compacts history before rev. Throws ErrCompacted (rev <= compacted) or ErrFutureRev synchronously; reads
   * below rev fail from now on. The promise resolves once the backend deletions and the "finishedCompactRev"
   * record are committed to disk.
   */
  compact(rev: number): Promise<void> {
    if (rev <= this.#compactMainRev) throw ErrCompacted;
    if (rev > this.#currentRev) throw ErrFutureRev;
    return this.#startCompaction(rev);
  }

  /** Resolves when every started compaction (including one resumed by open) has finished. */
  compactionDone(): Promise<void> {
    return this.#compactions;
  }

  /** Commits the backend, the consistent index with it. */
  commit(): Promise<void> {
    return this.backend.forceCommit();
  }

  /** etcd's Hash: a hash of the whole backend except the consistent index, and the current revision. */
  hash(): { hash: number; rev: number } {
    const ignores = new Map([[BUCKET.meta, new Set(["consistent_index", "term"])]]);
    return { hash: this.backend.hash(ignores), rev: this.#currentRev };
  }

  /**
   * etcd's HashKV: CRC-32C of the "key" bucket up to rev (0: current), skipping revisions a compaction at rev
   * would remove. Throws ErrCompacted for rev <= compacted and ErrFutureRev beyond the current revision.
   */
  hashByRev(rev: number): { hash: number; currentRev: number; compactRev: number } {
    const compactRev = this.#compactMainRev, currentRev = this.#currentRev;
    if (rev > 0 && rev <= compactRev) throw ErrCompacted;
    if (rev > 0 && rev > currentRev) throw ErrFutureRev;
    if (rev === 0) rev = currentRev;
    const keep = this.index.keep(rev);
    let h = crc32c(KEY_BUCKET_NAME);
    for (const r of this.#storedRevisions()) {
      if (r.main > rev) break;
      if (r.main <= compactRev && keep.size > 0 && !keep.has(revKey(r.main, r.sub))) continue;
      h = crc32cUpdate(h, storedKey(r));
      h = crc32cUpdate(h, storedBytes(r));
    }
    return { hash: h, currentRev, compactRev };
  }

  /** Stops background compaction. The backend stays open: its owner closes it. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#compactions.catch(() => {});
  }

  /** The backend's hook before each commit: the consistent index, when it moved, goes with the data it covers. */
  #saveIndex(): void {
    if (this.#consistentIndex === 0 || this.#consistentIndex === this.#savedIndex) return;
    this.#savedIndex = this.#consistentIndex;
    this.backend.put(BUCKET.meta, CONSISTENT_INDEX_KEY, uint64ToBytes(this.#consistentIndex));
    this.backend.put(BUCKET.meta, TERM_KEY, uint64ToBytes(this.#term));
  }

  #startCompaction(rev: number): Promise<void> {
    this.#compactMainRev = rev;
    this.#trimHistory(rev);
    // Recorded first, so a crash before the compaction finishes resumes it on restart.
    this.backend.put(BUCKET.meta, SCHEDULED_COMPACT_KEY, revToBytes(rev, 0));
    const scheduled = this.backend.forceCommit();
    this.#compactions = this.#compactions.then(async () => {
      await scheduled;
      if (this.#closed) return;
      this.#removing = this.index.compact(rev).sort(compareRevs);
      this.#removedUpTo = 0;
      await this.#compactBackend(rev);
    });
    return this.#compactions;
  }

  /** Deletes the revisions in #removing from the backend, in bounded batches each committed on its own. */
  async #compactBackend(rev: number): Promise<void> {
    const removing = this.#removing;
    for (;;) {
      const end = Math.min(this.#removedUpTo + this.compactionBatchLimit, removing.length);
      for (let i = this.#removedUpTo; i < end; i++) {
        this.backend.delete(BUCKET.key, storedKey(removing[i]), storedBytesSize(removing[i]));
      }
      this.#removedUpTo = end;
      if (end === removing.length) {
        this.#removing = [];
        this.#removedUpTo = 0;
        this.backend.put(BUCKET.meta, FINISHED_COMPACT_KEY, revToBytes(rev, 0));
        await this.backend.forceCommit();
        return;
      }
      await this.backend.forceCommit();
      await new Promise((r) => setTimeout(r, this.compactionSleepMs));
      if (this.#closed) return;
    }
  }

  /** The revisions of the "key" bucket in key order: the index's and those a compaction has yet to delete. */
  #storedRevisions(): IndexRev[] {
    const revs = this.index.allRevisions();
    for (let i = this.#removedUpTo; i < this.#removing.length; i++) revs.push(this.#removing[i]);
    return revs.sort(compareRevs);
  }

  /** The "key" bucket's content, re-encoded from the index, for the backend. */
  #forEachStored(fn: (key: Uint8Array, value: Uint8Array) => void): void {
    for (const r of this.#storedRevisions()) fn(storedKey(r), storedBytes(r));
  }

  /** Rebuilds the index from the replayed "key" bucket. */
  #restore(replayed: BucketContent): void {
    const b = this.backend;
    const finished = b.get(BUCKET.meta, FINISHED_COMPACT_KEY);
    if (finished !== undefined) this.#compactMainRev = bytesToRev(finished).main;
    const scheduledBytes = b.get(BUCKET.meta, SCHEDULED_COMPACT_KEY);
    let scheduled = scheduledBytes === undefined ? 0 : bytesToRev(scheduledBytes).main;
    const ci = b.get(BUCKET.meta, CONSISTENT_INDEX_KEY);
    if (ci !== undefined) this.#consistentIndex = this.#savedIndex = bytesToUint64(ci);
    const term = b.get(BUCKET.meta, TERM_KEY);
    if (term !== undefined) this.#term = bytesToUint64(term);

    let currentRev = 1;
    // a key met first is inserted as its revision (see StoredRev): the one the visitor is at, by its position in the
    // replayed revisions when it has one (the history then reads them there too: nothing pushed per revision)
    const positions = this.#restored !== null;
    // the leases of the revisions that stand in the index by their position (see forEachLease)
    const positionLeases = new Map<number, bigint>();
    let created = false, rMain = 0, rSub = 0, rBuf = EMPTY_BYTES, rStart = 0, rEnd = 0, rLease = 0n;
    const newKey = (key: Uint8Array) => {
      created = true;
      return new StoredRev(rMain, rSub, key, rLease, rBuf, rStart, rEnd);
    };
    forEachRevision(replayed, (main, sub, tombstone, v, start, end, at) => {
      currentRev = main;
      if (tombstone) {
        const stored = decodeKeyValue(v, start, end);
        const ki = this.index.keyIndex(stored.key);
        if (ki !== undefined) {
          const tomb = newKeyValue(ki.key, EMPTY_BYTES, 0n, BigInt(main), 0n, 0n);
          ki.tombstone(main, sub, tomb);
          if (!positions) this.#history.push(tomb);
        } else {
          // Left by a compaction interrupted after deleting the key's earlier revisions: it is garbage.
          b.delete(BUCKET.key, revToBytes(main, sub, true), end - start);
          if (positions) this.#restored!.deleteAt(at);
        }
        return;
      }
      scanKeyValue(v, start, end);
      const lease = scanned.lease, keyStart = scanned.keyStart, keyEnd = scanned.keyEnd;
      let e;
      if (positions) {
        e = this.index.entryOrInsertAt(at, keyStart, keyEnd);
        if (e === at) {
          if (lease !== 0n) positionLeases.set(at, lease);
          return;
        }
      } else {
        created = false;
        rMain = main, rSub = sub, rBuf = v, rStart = start, rEnd = end, rLease = lease;
        e = this.index.entryOrInsert(v.subarray(keyStart, keyEnd), newKey);
        if (created) return void this.#history.push(e as StoredRev);
      }
      // a key's later revision: its KeyIndex (made now from its first if that stood for it) gets it
      const ki = e instanceof KeyIndex ? e : this.index.keyIndex(v.subarray(keyStart, keyEnd))!;
      const r = new StoredRev(main, sub, ki.key, lease, v, start, end);
      ki.putRev(r);
      if (!positions) this.#history.push(r);
    });
    this.#currentRev = Math.max(currentRev, this.#compactMainRev);
    this.#trimHistory(this.#compactMainRev);
    if (scheduled <= this.#compactMainRev) scheduled = 0;

    if (this.lessor !== undefined) {
      const lessor = this.lessor;
      this.index.forEachLease((key, lease) => lessor.attach(lease, key), (at) => positionLeases.get(at) ?? 0n);
    }
    if (scheduled !== 0) this.#startCompaction(scheduled).catch(() => {});
  }
}
