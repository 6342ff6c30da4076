/**
 * A bbolt database file built from buckets of sorted entries, as etcd's backend.Snapshot streams one to a client
 * (Maintenance.Snapshot): `etcdctl snapshot status` and `snapshot restore` open it with bbolt, and etcd can start on
 * what they restore.
 *
 * The layout is planned from the entries' sizes before a byte is written, so the file streams out page by page in
 * order, holding one page at a time: pages 0 and 1 the meta pages, 2 an empty freelist, then the root bucket's tree
 * (one element per bucket), then each bucket's tree, leaves first and the root of each tree last. Every page is
 * reachable and nothing is free (bbolt's tx.Check, which `snapshot status` runs, finds no error). Leaves and branches
 * are filled to the page; an entry too large for one page gets a page of its own with overflow pages. A bucket with
 * no entries is inline, as bbolt creates it. The format: bolt_format.ts.
 */
import { compareBytes } from "./bytes.ts";
import {
  BOLT_PAGE_SIZE,
  BRANCH_PAGE,
  BUCKET_HEADER,
  BUCKET_LEAF,
  ELEMENT,
  FREELIST_PAGE,
  LEAF_PAGE,
  MAGIC,
  META_PAGE,
  META_SUMMED,
  metaChecksum,
  PAGE_HEADER,
  VERSION,
} from "./bolt_format.ts";

const FREELIST_ID = 2;
const FIRST_DATA_ID = 3;
const MAX_COUNT = 0xffff; // a page header's count is 16 bits

export interface BoltBucket {
  name: Uint8Array;
  keys: Uint8Array[];
  values: Uint8Array[];
}

/** Pages of one level: page i holds elements [firsts[i], firsts[i+1]) of the level below (the entries for leaves). */
interface Level {
  firsts: number[];
  spans: number[]; // pages each takes (1 + overflow)
  ids: number[];
}

/** One B+tree: its levels from the leaves up; the last level has one page, the tree's root. */
class Tree {
  readonly levels: Level[] = [];
  pages = 0;

  constructor(readonly keys: Uint8Array[], readonly valueSize: (i: number) => number) {
    const leafSize = (i: number) => ELEMENT + keys[i].length + valueSize(i);
    let level = pack(keys.length, leafSize);
    this.levels.push(level);
    while (level.firsts.length > 1) {
      const depth = this.levels.length - 1;
      level = pack(level.firsts.length, (i) => ELEMENT + keys[this.firstEntry(depth, i)].length);
      this.levels.push(level);
    }
    for (const l of this.levels) for (const s of l.spans) this.pages += s;
  }

  /** Gives the pages ids from `base` on, leaves first; returns the root's id. */
  place(base: number): number {
    let id = base;
    for (const l of this.levels) {
      for (const s of l.spans) {
        l.ids.push(id);
        id += s;
      }
    }
    return id - this.levels[this.levels.length - 1].spans[0];
  }

  /** The entry a page of level `depth` starts with. */
  firstEntry(depth: number, page: number): number {
    let i = page;
    for (let d = depth; d >= 0; d--) i = this.levels[d].firsts[i];
    return i;
  }

  /** The tree's pages in id order, each written by `leaf` for its entries or as a branch. */
  *pageBytes(value: (i: number) => Uint8Array, flags: (i: number) => number): Generator<Uint8Array> {
    for (let d = 0; d < this.levels.length; d++) {
      const l = this.levels[d];
      const count = (p: number) => (p + 1 < l.firsts.length ? l.firsts[p + 1] : this.levelLength(d)) - l.firsts[p];
      for (let p = 0; p < l.firsts.length; p++) {
        const buf = new Uint8Array(l.spans[p] * BOLT_PAGE_SIZE);
        const view = new DataView(buf.buffer);
        const n = count(p);
        pageHeader(view, l.ids[p], d === 0 ? LEAF_PAGE : BRANCH_PAGE, n, l.spans[p] - 1);
        let data = PAGE_HEADER + n * ELEMENT;
        for (let j = 0; j < n; j++) {
          const at = PAGE_HEADER + j * ELEMENT;
          const e = l.firsts[p] + j;
          const key = this.keys[d === 0 ? e : this.firstEntry(d - 1, e)];
          if (d === 0) {
            const v = value(e);
            view.setUint32(at, flags(e), true);
            view.setUint32(at + 4, data - at, true);
            view.setUint32(at + 8, key.length, true);
            view.setUint32(at + 12, v.length, true);
            buf.set(key, data);
            buf.set(v, data + key.length);
            data += key.length + v.length;
          } else {
            view.setUint32(at, data - at, true);
            view.setUint32(at + 4, key.length, true);
            view.setBigUint64(at + 8, BigInt(this.levels[d - 1].ids[e]), true);
            buf.set(key, data);
            data += key.length;
          }
        }
        yield buf;
      }
    }
  }

  levelLength(depth: number): number {
    return depth === 0 ? this.keys.length : this.levels[depth - 1].firsts.length;
  }
}

/** Packs `n` elements of the given sizes into pages, as many to a page as fit; an empty level is one empty page. */
function pack(n: number, size: (i: number) => number): Level {
  const level: Level = { firsts: [0], spans: [], ids: [] };
  let used = PAGE_HEADER, count = 0;
  for (let i = 0; i < n; i++) {
    const s = size(i);
    if (count > 0 && (used + s > BOLT_PAGE_SIZE || count === MAX_COUNT)) {
      level.spans.push(Math.ceil(used / BOLT_PAGE_SIZE));
      level.firsts.push(i);
      used = PAGE_HEADER;
      count = 0;
    }
    used += s;
    count++;
  }
  level.spans.push(Math.ceil(used / BOLT_PAGE_SIZE));
  return level;
}

function pageHeader(view: DataView, id: number, flags: number, count: number, overflow: number): void {
  view.setBigUint64(0, BigInt(id), true);
  view.setUint16(8, flags, true);
  view.setUint16(10, count, true);
  view.setUint32(12, overflow, true);
}

export class BoltImage {
  /** The file's length in bytes: whole pages. */
  readonly size: number;
  readonly #buckets: BoltBucket[];
  readonly #trees: (Tree | null)[];
  readonly #rootTree: Tree;
  readonly #rootId: number;
  readonly #pages: number;
  readonly #txid: number;

  /** `buckets` in name order, each one's keys in order; nothing is copied, so neither may change while it streams. */
  constructor(buckets: BoltBucket[], txid = 1) {
    for (let i = 1; i < buckets.length; i++) assertAscending(buckets[i - 1].name, buckets[i].name, "bucket");
    for (const b of buckets) {
      if (b.keys.length !== b.values.length) throw new Error("bolt: a bucket's keys and values differ in number");
      for (let i = 1; i < b.keys.length; i++) assertAscending(b.keys[i - 1], b.keys[i], "key");
    }
    this.#buckets = buckets;
    this.#txid = txid;
    // a bucket's element: its header, and for an empty (inline) bucket an empty leaf page after it
    this.#rootTree = new Tree(
      buckets.map((b) => b.name),
      (i) => BUCKET_HEADER + (buckets[i].keys.length === 0 ? PAGE_HEADER : 0),
    );
    this.#rootId = this.#rootTree.place(FIRST_DATA_ID);
    let next = FIRST_DATA_ID + this.#rootTree.pages;
    this.#trees = buckets.map((b) => {
      if (b.keys.length === 0) return null;
      const t = new Tree(b.keys, (i) => b.values[i].length);
      t.place(next);
      next += t.pages;
      return t;
    });
    this.#pages = next;
    this.size = next * BOLT_PAGE_SIZE;
  }

  /** The file's pages in order, one buffer of one page (and its overflow) at a time. */
  *chunks(): Generator<Uint8Array> {
    yield this.#meta(0);
    yield this.#meta(1);
    const freelist = new Uint8Array(BOLT_PAGE_SIZE);
    pageHeader(new DataView(freelist.buffer), FREELIST_ID, FREELIST_PAGE, 0, 0);
    yield freelist;
    const bucketValue = (i: number) => {
      const v = new Uint8Array(BUCKET_HEADER + (this.#trees[i] === null ? PAGE_HEADER : 0));
      const view = new DataView(v.buffer);
      const t = this.#trees[i];
      if (t === null) pageHeader(new DataView(v.buffer, BUCKET_HEADER), 0, LEAF_PAGE, 0, 0);
      else view.setBigUint64(0, BigInt(t.levels[t.levels.length - 1].ids[0]), true);
      return v;
    };
    yield* this.#rootTree.pageBytes(bucketValue, () => BUCKET_LEAF);
    for (const [i, t] of this.#trees.entries()) {
      if (t !== null) yield* t.pageBytes((e) => this.#buckets[i].values[e], () => 0);
    }
  }

  #meta(id: number): Uint8Array {
    const buf = new Uint8Array(BOLT_PAGE_SIZE);
    const view = new DataView(buf.buffer);
    pageHeader(view, id, META_PAGE, 0, 0);
    const m = PAGE_HEADER;
    view.setUint32(m, MAGIC, true);
    view.setUint32(m + 4, VERSION, true);
    view.setUint32(m + 8, BOLT_PAGE_SIZE, true);
    view.setUint32(m + 12, 0, true);
    view.setBigUint64(m + 16, BigInt(this.#rootId), true);
    view.setBigUint64(m + 24, 0n, true);
    view.setBigUint64(m + 32, BigInt(FREELIST_ID), true);
    view.setBigUint64(m + 40, BigInt(this.#pages), true);
    view.setBigUint64(m + 48, BigInt(this.#txid), true);
    view.setBigUint64(m + META_SUMMED, metaChecksum(buf.subarray(m, m + META_SUMMED)), true);
    return buf;
  }
}

function assertAscending(a: Uint8Array, b: Uint8Array, what: string): void {
  if (compareBytes(a, b) >= 0) throw new Error(`bolt: ${what}s out of order or repeated`);
}
