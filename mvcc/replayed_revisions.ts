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

/** One stored revision: its value is buf[start, end). */
export type RevisionVisitor = (
  main: number,
  sub: number,
  tombstone: boolean,
  buf: Uint8Array,
  start: number,
  end: number,
) => void;

export class ReplayedRevisions {
  #main: number[] = [];
  #sub: number[] = [];
  #tombstone: boolean[] = [];
  #buf: Uint8Array[] = [];
  #start: number[] = [];
  /** -1 once deleted. */
  #end: number[] = [];
  #size = 0;
  // the key being put or deleted, parsed by #parse
  #pMain = 0;
  #pSub = 0;
  #pTombstone = false;

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
    const n = this.#main.length;
    if (n > 0 && this.#compareAt(n - 1) >= 0) return false;
    this.#main.push(this.#pMain);
    this.#sub.push(this.#pSub);
    this.#tombstone.push(this.#pTombstone);
    this.#buf.push(b);
    this.#start.push(vs);
    this.#end.push(ve);
    this.#size++;
    return true;
  }

  /** Deletes key b[ks, ke); returns the length of the value it had, or -1 when it was not there. */
  delete(b: Uint8Array, ks: number, ke: number): number {
    if (!this.#parse(b, ks, ke)) return -1;
    let lo = 0, hi = this.#main.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.#compareAt(mid);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else {
        if (this.#end[mid] < 0) return -1;
        const length = this.#end[mid] - this.#start[mid];
        this.#end[mid] = -1;
        this.#size--;
        return length;
      }
    }
    return -1;
  }

  /** Visits the live revisions in order. */
  forEach(fn: RevisionVisitor): void {
    for (let i = 0; i < this.#main.length; i++) {
      if (this.#end[i] >= 0) {
        fn(this.#main[i], this.#sub[i], this.#tombstone[i], this.#buf[i], this.#start[i], this.#end[i]);
      }
    }
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
    return this.#main[i] - this.#pMain || this.#sub[i] - this.#pSub ||
      Number(this.#tombstone[i]) - Number(this.#pTombstone);
  }
}

/** Visits the replayed "key" bucket, columns or (when its replay went generic) a tree, revision by revision. */
export function forEachRevision(content: ReplayedRevisions | BTree<Uint8Array>, fn: RevisionVisitor): void {
  if (content instanceof ReplayedRevisions) return content.forEach(fn);
  content.forEach((k, v) => {
    const r = bytesToRev(k);
    fn(r.main, r.sub, isTombstone(k), v, 0, v.length);
  });
}
