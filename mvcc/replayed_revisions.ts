/**
 * The "key" bucket as a restart replays it from the backend's log. Its keys are revisions (revision.ts), put in
 * increasing order, so they are kept as columns of numbers beside where each value lies in the log's read buffers,
 * instead of a B+ tree of key and value arrays that would live only until the store has rebuilt its index from it
 * (195k revisions: ~390k arrays made, kept through collections, then dropped). A put that is not a revision greater
 * than the last is refused, and the bucket's replay then goes on as any other's (toBTree).
 */
import { BTree } from "./btree.ts";
import {
  bytesToRev,
  getUint64,
  isTombstone,
  MARK_TOMBSTONE,
  MARKED_REV_BYTES_LEN,
  REV_BYTES_LEN,
  REV_SEPARATOR,
  revToBytes,
} from "./revision.ts";

/** One stored revision: its value is buf[start, end); `at` its position in ReplayedRevisions (-1 in a tree). */
export type RevisionVisitor = (
  main: number,
  sub: number,
  tombstone: boolean,
  buf: Uint8Array,
  start: number,
  end: number,
  at: number,
) => void;

/** Numbers kept per revision in a block: main, sub, value start, value end (-1 once deleted), buffer * 2 + tombstone. */
const STRIDE = 5;

/** The buffer index in a block's last field (see STRIDE). */
function bufferIndex(field: number): number {
  return (field - (field % 2)) / 2;
}

export class ReplayedRevisions {
  /**
   * The revisions in blocks of `#block` (Float64Array: every field exact up to 2^53), so that a replay of 195k
   * revisions fills ~8 MB of typed arrays, off the V8 heap, instead of pushing onto six JS arrays (~40% of a restart's
   * replay of its backend, measured): no array copied as it grows, nothing for the collector to scan or move.
   */
  #blocks: Float64Array[] = [];
  readonly #block: number;
  /** The read buffers the values lie in; a revision holds the index of its own. */
  #bufs: Uint8Array[] = [];
  #count = 0;
  #size = 0;
  // the key being put or deleted, parsed by #parse
  #pMain = 0;
  #pSub = 0;
  #pTombstone = false;

  /** `block`: revisions per block (small in tests, to cross blocks). */
  constructor(block = 16384) {
    this.#block = block;
  }

  /** Live revisions. */
  get size(): number {
    return this.#size;
  }

  /**
   * Records key b[ks, ke) with value b[vs, ve) (`b` is kept: the caller must not change it). False, and nothing
   * recorded, when the key is not a revision greater than every one recorded before.
   */
  put(b: Uint8Array, ks: number, ke: number, vs: number, ve: number): boolean {
    if (!this.#parse(b, ks, ke)) return false;
    const n = this.#count;
    if (n > 0 && this.#compareAt(n - 1) >= 0) return false;
    const bufs = this.#bufs;
    if (bufs.length === 0 || bufs[bufs.length - 1] !== b) bufs.push(b);
    const o = this.#offsetOf(n);
    if (o === 0) this.#blocks.push(new Float64Array(this.#block * STRIDE));
    const d = this.#blocks[this.#blocks.length - 1];
    d[o] = this.#pMain;
    d[o + 1] = this.#pSub;
    d[o + 2] = vs;
    d[o + 3] = ve;
    d[o + 4] = (bufs.length - 1) * 2 + (this.#pTombstone ? 1 : 0);
    this.#count = n + 1;
    this.#size++;
    return true;
  }

  /** Deletes key b[ks, ke); returns the length of the value it had, or -1 when it was not there. */
  delete(b: Uint8Array, ks: number, ke: number): number {
    if (!this.#parse(b, ks, ke)) return -1;
    let lo = 0, hi = this.#count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.#compareAt(mid);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else {
        const end = this.endAt(mid);
        if (end < 0) return -1;
        this.deleteAt(mid);
        return end - this.startAt(mid);
      }
    }
    return -1;
  }

  /** Visits the live revisions in order. */
  forEach(fn: RevisionVisitor): void {
    const bufs = this.#bufs;
    let left = this.#count, at = 0;
    for (const d of this.#blocks) {
      const n = Math.min(left, this.#block) * STRIDE;
      left -= this.#block;
      for (let o = 0; o < n; o += STRIDE, at++) {
        const end = d[o + 3];
        if (end < 0) continue;
        const bt = d[o + 4];
        fn(d[o], d[o + 1], bt % 2 === 1, bufs[bufferIndex(bt)], d[o + 2], end, at);
      }
    }
  }

  // The revision at a position forEach gave (live or deleted since), without a visit: what the index and the
  // history keep of a restored revision instead of an object each (see TreeIndex, KVStore).

  /** Positions recorded, deleted ones included. */
  get count(): number {
    return this.#count;
  }

  mainAt(at: number): number {
    return this.#field(at, 0);
  }

  subAt(at: number): number {
    return this.#field(at, 1);
  }

  /** Where its value starts in bufAt(at). */
  startAt(at: number): number {
    return this.#field(at, 2);
  }

  /** Where its value ends in bufAt(at); -1 once deleted. */
  endAt(at: number): number {
    return this.#field(at, 3);
  }

  bufAt(at: number): Uint8Array {
    return this.#bufs[bufferIndex(this.#field(at, 4))];
  }

  isTombstoneAt(at: number): boolean {
    return this.#field(at, 4) % 2 === 1;
  }

  #field(at: number, k: number): number {
    return this.#blockOf(at)[this.#offsetOf(at) + k];
  }

  #blockOf(at: number): Float64Array {
    return this.#blocks[Math.floor(at / this.#block)];
  }

  #offsetOf(at: number): number {
    return (at % this.#block) * STRIDE;
  }

  /** Deletes the revision at `at` (live). */
  deleteAt(at: number): void {
    if (this.endAt(at) < 0) throw new Error(`replayed revisions: ${at} is already deleted`);
    this.#blockOf(at)[this.#offsetOf(at) + 3] = -1;
    this.#size--;
  }

  /** The same content as a tree of key and value arrays: for a replay that goes on generically, or a reader. */
  toBTree(): BTree<Uint8Array> {
    const t = new BTree<Uint8Array>();
    this.forEach((main, sub, tombstone, buf, start, end) => {
      t.set(revToBytes(main, sub, tombstone), buf.subarray(start, end));
    });
    return t;
  }

  /** Parses b[ks, ke) as a revision key into #pMain, #pSub, #pTombstone; false when it is not one. */
  #parse(b: Uint8Array, ks: number, ke: number): boolean {
    const n = ke - ks;
    if (n !== REV_BYTES_LEN && n !== MARKED_REV_BYTES_LEN) return false;
    if (b[ks + 8] !== REV_SEPARATOR) return false;
    if (n === MARKED_REV_BYTES_LEN && b[ks + 17] !== MARK_TOMBSTONE) return false;
    const main = getUint64(b, ks), sub = getUint64(b, ks + 9);
    if (main > Number.MAX_SAFE_INTEGER || sub > Number.MAX_SAFE_INTEGER) return false;
    this.#pMain = main;
    this.#pSub = sub;
    this.#pTombstone = n === MARKED_REV_BYTES_LEN;
    return true;
  }

  /** How revision i orders against the parsed one (as their keys' bytes do). */
  #compareAt(i: number): number {
    const d = this.#blockOf(i), o = this.#offsetOf(i);
    return d[o] - this.#pMain || d[o + 1] - this.#pSub || (d[o + 4] % 2) - Number(this.#pTombstone);
  }
}

/** Visits the replayed "key" bucket, columns or (when its replay went generic) a tree, revision by revision. */
export function forEachRevision(content: ReplayedRevisions | BTree<Uint8Array>, fn: RevisionVisitor): void {
  if (content instanceof ReplayedRevisions) return content.forEach(fn);
  content.forEach((k, v) => {
    const r = bytesToRev(k);
    fn(r.main, r.sub, isTombstone(k), v, 0, v.length, -1);
  });
}
