/**
 * treeIndex: key -> keyIndex, ordered by key bytes (a B+ tree), answering "which revision of which keys is
 * visible at revision R" for single keys and ranges.
 *
 * Ranges follow etcd: `end` undefined is the single key `key`; an empty `end` means every key >= key.
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { BTree, type KeySource } from "./btree.ts";
import { compareRanges } from "./bytes.ts";
import { type GetResult, type IndexRev, type KeyHistory, KeyIndex } from "./key_index.ts";
import type { ReplayedRevisions } from "./replayed_revisions.ts";
import { revKey } from "./revision.ts";
import { leaseOf, StoredRev } from "./stored_rev.ts";

/**
 * A key's entry: its KeyIndex, or a restored key's one revision standing in for it until a write (see StoredRev), as
 * its position in the replayed revisions (a number: no object per key, ~150k on a restart) or, restored from a replay
 * that has no positions (a tree, see forEachRevision), as a StoredRev.
 */
type Entry = KeyIndex | StoredRev | number;

/**
 * The keys of restored revisions, which the tree keeps as the revisions' positions (see KeySource): key `at` is
 * where the KeyValue stored at that position holds it.
 */
class RestoredKeys implements KeySource {
  // where each key lies, by position: its buffer's index in #buffers, its start and end there. Integers, so that the
  // comparisons' byte loops index with them as fast as with a view's own (in doubles they took ~1.5x as long); a
  // replay's buffers are chunks of the log of a few MiB (a record at most: far below 4 GiB).
  readonly #buffers: Uint8Array[] = [];
  readonly #bufferOf: Uint32Array;
  readonly #starts: Uint32Array;
  readonly #ends: Uint32Array;

  constructor(count: number) {
    this.#bufferOf = new Uint32Array(count);
    this.#starts = new Uint32Array(count);
    this.#ends = new Uint32Array(count);
  }

  /** Records where the key of the revision at `at` lies. */
  set(at: number, buf: Uint8Array, start: number, end: number): void {
    if (end > 0xffffffff) throw new Error(`mvcc: restored key at ${start} of a ${buf.length}-byte buffer`);
    const bufs = this.#buffers;
    if (bufs.length === 0 || bufs[bufs.length - 1] !== buf) bufs.push(buf);
    this.#bufferOf[at] = bufs.length - 1;
    this.#starts[at] = start;
    this.#ends[at] = end;
  }

  compareTo(at: number, key: Uint8Array): number {
    return compareRanges(this.#buffers[this.#bufferOf[at]], this.#starts[at], this.#ends[at], key, 0, key.length);
  }

  compare(a: number, b: number): number {
    const bufs = this.#buffers, of = this.#bufferOf, starts = this.#starts, ends = this.#ends;
    return compareRanges(bufs[of[a]], starts[a], ends[a], bufs[of[b]], starts[b], ends[b]);
  }

  key(at: number): Uint8Array {
    return this.#buffers[this.#bufferOf[at]].subarray(this.#starts[at], this.#ends[at]);
  }
}

export class TreeIndex {
  readonly #tree: BTree<Entry>;
  /** What the positions in the tree are positions in. */
  readonly #restored: ReplayedRevisions | null;
  readonly #restoredKeys: RestoredKeys | null;

  constructor(restored: ReplayedRevisions | null = null) {
    this.#restored = restored;
    this.#restoredKeys = restored === null ? null : new RestoredKeys(restored.count);
    this.#tree = new BTree<Entry>(this.#restoredKeys);
  }

  /** Number of keys with any retained history. */
  get size(): number {
    return this.#tree.size;
  }

  /** The key's KeyIndex, for a write: a restored key's is made now from its one revision, and takes its place. */
  keyIndex(key: Uint8Array): KeyIndex | undefined {
    const e = this.#tree.get(key);
    if (e === undefined || e instanceof KeyIndex) return e;
    const r = this.#stored(e);
    const ki = new KeyIndex(r.key);
    const { created, ver } = r.created();
    ki.restore(created, r, ver);
    this.#tree.set(r.key, ki);
    return ki;
  }

  /** An entry as a KeyHistory: a position read as its StoredRev (made for this read: reads are answered from it). */
  #history(e: Entry): KeyIndex | StoredRev {
    return e instanceof KeyIndex ? e : this.#stored(e);
  }

  #stored(e: StoredRev | number): StoredRev {
    return typeof e === "number" ? StoredRev.at(this.#restored!, e) : e;
  }

  insert(ki: KeyIndex): void {
    this.#tree.set(ki.key, ki);
  }

  /** The key's entry, or the restored revision `make(key)` gives, inserted (one descent of the tree). */
  entryOrInsert(key: Uint8Array, make: (key: Uint8Array) => StoredRev): Entry {
    return this.#tree.getOrInsert(key, () => make(key));
  }

  /**
   * The entry of the key of the restored revision at position `at` (its key at [keyStart, keyEnd) of its buffer), or
   * that position, inserted: the tree keeps both the key and the revision as the position.
   */
  entryOrInsertAt(at: number, keyStart: number, keyEnd: number): Entry {
    this.#restoredKeys!.set(at, this.#restored!.bufAt(at), keyStart, keyEnd);
    return this.#tree.getOrInsert(at, () => at);
  }

  get(key: Uint8Array, atRev: number): GetResult | null {
    const e = this.#tree.get(key);
    return e === undefined ? null : this.#history(e).get(atRev);
  }

  put(key: Uint8Array, main: number, sub: number, kv: KeyValue): void {
    let ki = this.keyIndex(key);
    if (ki === undefined) {
      ki = new KeyIndex(key);
      this.#tree.set(key, ki);
    }
    ki.put(main, sub, kv);
  }

  /** Tombstones a live key; false if the key is missing or already deleted. */
  tombstone(key: Uint8Array, main: number, sub: number, kv: KeyValue): boolean {
    const ki = this.keyIndex(key);
    return ki !== undefined && ki.tombstone(main, sub, kv);
  }

  /** Visits the histories of the keys in the range, for reads. Stops when fn returns false. */
  visit(key: Uint8Array, end: Uint8Array | undefined, fn: (h: KeyHistory) => boolean | void): void {
    if (end === undefined) {
      const e = this.#tree.get(key);
      if (e !== undefined) fn(this.#history(e));
      return;
    }
    this.#tree.rangeAsKept(key, end.length === 0 ? undefined : end, (_k, e) => fn(this.#history(e)));
  }

  /**
   * Revisions visible at atRev in key order: at most `limit` entries (limit <= 0: all) and the count of all
   * matching keys.
   */
  revisions(
    key: Uint8Array,
    end: Uint8Array | undefined,
    atRev: number,
    limit: number,
  ): { revs: IndexRev[]; count: number } {
    const revs: IndexRev[] = [];
    let count = 0;
    this.visit(key, end, (ki) => {
      const r = ki.getRev(atRev);
      if (r === null) return;
      count++;
      if (limit <= 0 || revs.length < limit) revs.push(r);
    });
    return { revs, count };
  }

  /** Number of keys visible at atRev in the range. */
  countRevisions(key: Uint8Array, end: Uint8Array | undefined, atRev: number): number {
    let count = 0;
    this.visit(key, end, (ki) => {
      if (ki.getRev(atRev) !== null) count++;
    });
    return count;
  }

  /** Every revision >= rev of keys in the range, ordered by revision (for watchers catching up). */
  rangeSince(key: Uint8Array, end: Uint8Array | undefined, rev: number): IndexRev[] {
    const out: IndexRev[] = [];
    this.visit(key, end, (ki) => {
      for (const r of ki.since(rev)) out.push(r);
    });
    if (end !== undefined) out.sort((a, b) => a.main - b.main || a.sub - b.sub);
    return out;
  }

  /** Compacts every keyIndex at rev, dropping ones left empty; returns the dropped revisions (unordered). */
  compact(rev: number): IndexRev[] {
    const removed: IndexRev[] = [];
    const emptied: Uint8Array[] = [];
    this.#tree.forEachAsKept((_k, e) => {
      // a restored key's one revision is the one visible at rev or after it: kept
      if (!(e instanceof KeyIndex)) return;
      e.compact(rev, removed);
      if (e.isEmpty()) emptied.push(e.key);
    });
    for (const k of emptied) this.#tree.delete(k);
    return removed;
  }

  /** The revisions a compaction at rev would keep, without compacting. */
  keep(rev: number): Set<string> {
    const available = new Set<string>();
    const restored = this.#restored;
    this.#tree.forEachAsKept((_k, e) => {
      if (e instanceof KeyIndex) e.keep(rev, available);
      else if (e instanceof StoredRev) {
        if (e.main <= rev) available.add(revKey(e.main, e.sub));
      } else {
        const main = restored!.mainAt(e);
        if (main <= rev) available.add(revKey(main, restored!.subAt(e)));
      }
    });
    return available;
  }

  /** Every retained revision of every key, unordered. */
  allRevisions(): IndexRev[] {
    const out: IndexRev[] = [];
    this.#tree.forEachAsKept((_k, e) => {
      this.#history(e).forEachRev((r) => out.push(r));
    });
    return out;
  }

  /**
   * Calls fn with every live key whose live revision has a lease, and the lease (in key order); a position's lease
   * is `positionLease(at)`'s (a restore knows them from its scan: read again here, ~150k keys took ~60 ms).
   */
  forEachLease(fn: (key: Uint8Array, lease: bigint) => void, positionLease: (at: number) => bigint): void {
    this.#tree.forEachAsKept((_k, e) => {
      if (typeof e === "number") {
        const lease = positionLease(e);
        if (lease !== 0n) fn(this.#restoredKeys!.key(e), lease);
        return;
      }
      const r = e.live;
      if (r === undefined) return;
      const lease = leaseOf(r);
      if (lease !== 0n) fn(e.key, lease);
    });
  }
}
