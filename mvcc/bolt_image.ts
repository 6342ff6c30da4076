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

/**
 * A bucket's entries in key order, by position: their sizes plan the pages, then each is written into its page, so
 * no entry needs a buffer of its own (see arrayBucket for entries that have one).
 */
export interface BoltBucket {
  readonly name: Uint8Array;
  readonly count: number;
  keySize(i: number): number;
  valueSize(i: number): number;
  writeKey(i: number, buf: Uint8Array, pos: number): void;
  writeValue(i: number, buf: Uint8Array, pos: number): void;
}

/** A bucket of entries held as buffers; their order is checked. */
export function arrayBucket(name: Uint8Array, keys: Uint8Array[], values: Uint8Array[]): BoltBucket {
  if (keys.length !== values.length) throw new Error("bolt: a bucket's keys and values differ in number");
  for (let i = 1; i < keys.length; i++) assertAscending(keys[i - 1], keys[i], "key");
  return {
    name,
    count: keys.length,
    keySize: (i) => keys[i].length,
    valueSize: (i) => values[i].length,
    writeKey: (i, buf, pos) => buf.set(keys[i], pos),
    writeValue: (i, buf, pos) => buf.set(values[i], pos),
  };
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

  constructor(readonly entries: BoltBucket, readonly flags: number) {
    let level = pack(entries.count, (i) => ELEMENT + entries.keySize(i) + entries.valueSize(i));
    this.levels.push(level);
    while (level.firsts.length > 1) {
      const depth = this.levels.length - 1;
      level = pack(level.firsts.length, (i) => ELEMENT + entries.keySize(this.firstEntry(depth, i)));
      this.levels.push(level);
    }
    for (const l of this.levels) for (const s of l.spans) this.pages += s;
  }

  /** Gives the pages ids from `base` on, leaves first. */
  place(base: number): void {
    let id = base;
    for (const l of this.levels) {
      for (const s of l.spans) {
        l.ids.push(id);
        id += s;
      }
    }
  }

  get rootId(): number {
    return this.levels[this.levels.length - 1].ids[0];
  }

  /** The entry a page of level `depth` starts with. */
  firstEntry(depth: number, page: number): number {
    let i = page;
    for (let d = depth; d >= 0; d--) i = this.levels[d].firsts[i];
    return i;
  }

  /** The tree's pages in id order; a one-page buffer is used again for the next (see BoltImage.chunks). */
  *pageBytes(): Generator<Uint8Array> {
    const entries = this.entries;
    const page = new Uint8Array(BOLT_PAGE_SIZE);
    for (let d = 0; d < this.levels.length; d++) {
      const l = this.levels[d];
      const levelLength = d === 0 ? entries.count : this.levels[d - 1].firsts.length;
      for (let p = 0; p < l.firsts.length; p++) {
        const buf = l.spans[p] === 1 ? page.fill(0) : new Uint8Array(l.spans[p] * BOLT_PAGE_SIZE);
        const view = new DataView(buf.buffer);
        const n = (p + 1 < l.firsts.length ? l.firsts[p + 1] : levelLength) - l.firsts[p];
        pageHeader(view, l.ids[p], d === 0 ? LEAF_PAGE : BRANCH_PAGE, n, l.spans[p] - 1);
        let data = PAGE_HEADER + n * ELEMENT;
        for (let j = 0; j < n; j++) {
          const at = PAGE_HEADER + j * ELEMENT;
          const e = l.firsts[p] + j;
          const k = d === 0 ? e : this.firstEntry(d - 1, e);
          const ksize = entries.keySize(k);
          entries.writeKey(k, buf, data);
          if (d === 0) {
            const vsize = entries.valueSize(e);
            entries.writeValue(e, buf, data + ksize);
            view.setUint32(at, this.flags, true);
            view.setUint32(at + 4, data - at, true);
            view.setUint32(at + 8, ksize, true);
            view.setUint32(at + 12, vsize, true);
            data += ksize + vsize;
          } else {
            view.setUint32(at, data - at, true);
            view.setUint32(at + 4, ksize, true);
            view.setBigUint64(at + 8, BigInt(this.levels[d - 1].ids[e]), true);
            data += ksize;
          }
        }
        yield buf;
      }
    }
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
  readonly #trees: (Tree | null)[];
  readonly #rootTree: Tree;
  readonly #pages: number;
  readonly #txid: number;

  /** `buckets` in name order; their entries are read as the pages are written, so none may change meanwhile. */
  constructor(buckets: BoltBucket[], txid = 1) {
    for (let i = 1; i < buckets.length; i++) assertAscending(buckets[i - 1].name, buckets[i].name, "bucket");
    this.#txid = txid;
    // the root bucket's entries: the buckets, each valued by its header (and, empty and so inline, an empty leaf page)
    const headerSize = (i: number) => BUCKET_HEADER + (buckets[i].count === 0 ? PAGE_HEADER : 0);
    const rootEntries: BoltBucket = {
      name: new Uint8Array(0),
      count: buckets.length,
      keySize: (i) => buckets[i].name.length,
      valueSize: headerSize,
      writeKey: (i, buf, pos) => buf.set(buckets[i].name, pos),
      writeValue: (i, buf, pos) => {
        const view = new DataView(buf.buffer, buf.byteOffset + pos, headerSize(i));
        const t = this.#trees[i];
        if (t === null) pageHeader(new DataView(view.buffer, view.byteOffset + BUCKET_HEADER), 0, LEAF_PAGE, 0, 0);
        else view.setBigUint64(0, BigInt(t.rootId), true);
      },
    };
    this.#rootTree = new Tree(rootEntries, BUCKET_LEAF);
    this.#rootTree.place(FIRST_DATA_ID);
    let next = FIRST_DATA_ID + this.#rootTree.pages;
    this.#trees = buckets.map((b) => {
      if (b.count === 0) return null;
      const t = new Tree(b, 0);
      t.place(next);
      next += t.pages;
      return t;
    });
    this.#pages = next;
    this.size = next * BOLT_PAGE_SIZE;
  }

  /**
   * The file's pages in order, one buffer of one page (and its overflow) at a time, each valid until the next is asked
   * for (buffers are used again).
   */
  *chunks(): Generator<Uint8Array> {
    yield this.#meta(0);
    yield this.#meta(1);
    const freelist = new Uint8Array(BOLT_PAGE_SIZE);
    pageHeader(new DataView(freelist.buffer), FREELIST_ID, FREELIST_PAGE, 0, 0);
    yield freelist;
    yield* this.#rootTree.pageBytes();
    for (const t of this.#trees) if (t !== null) yield* t.pageBytes();
  }

  /** The file in pieces of `size` bytes (the last one shorter), each in a buffer of its own, as a transport sends them. */
  *pieces(size: number): Generator<Uint8Array> {
    let piece = new Uint8Array(size), filled = 0;
    for (const page of this.chunks()) {
      for (let at = 0; at < page.length;) {
        const n = Math.min(size - filled, page.length - at);
        piece.set(page.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === size) {
          yield piece;
          piece = new Uint8Array(size);
          filled = 0;
        }
      }
    }
    if (filled > 0) yield piece.subarray(0, filled);
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
    view.setBigUint64(m + 16, BigInt(this.#rootTree.rootId), true);
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
