/**
 * Reads a bbolt database file (etcd's backend) without bbolt: the newest valid meta page, the root bucket's tree, and
 * every bucket's entries in key order. A data dir etcd wrote, a backup `etcdctl snapshot restore` turned into one,
 * and a leader's snapshot from an etcd member all hold one. Damage found while reading (a page out of the file, a page
 * of the wrong kind, an element outside its page, a tree deeper than any bbolt makes) throws BoltFormatError; nested
 * buckets, which etcd never makes, too.
 */
import {
  BOLT_PAGE_SIZE,
  BRANCH_PAGE,
  BUCKET_HEADER,
  BUCKET_LEAF,
  ELEMENT,
  LEAF_PAGE,
  MAGIC,
  META_PAGE,
  META_SUMMED,
  metaChecksum,
  PAGE_HEADER,
  VERSION,
} from "./bolt_format.ts";

const MAX_DEPTH = 64; // bbolt's trees of 4 KiB pages are a handful of levels deep

export class BoltFormatError extends Error {
  constructor(why: string) {
    super(`bbolt: ${why}`);
    this.name = "BoltFormatError";
  }
}

/** Whether `head` (the file's first bytes) starts with a bbolt meta page. */
export function isBoltFile(head: Uint8Array): boolean {
  if (head.length < PAGE_HEADER + 8) return false;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return (v.getUint16(8, true) & META_PAGE) !== 0 && v.getUint32(PAGE_HEADER, true) === MAGIC;
}

interface Meta {
  pageSize: number;
  root: number;
  txid: bigint;
}

function readMeta(v: DataView, at: number): Meta | undefined {
  const m = at + PAGE_HEADER;
  if (m + 64 > v.byteLength) return undefined;
  if (v.getUint32(m, true) !== MAGIC || v.getUint32(m + 4, true) !== VERSION) return undefined;
  const checksum = v.getBigUint64(m + META_SUMMED, true);
  if (checksum !== 0n && checksum !== metaChecksum(new Uint8Array(v.buffer, v.byteOffset + m, META_SUMMED))) {
    return undefined;
  }
  return {
    pageSize: v.getUint32(m + 8, true),
    root: Number(v.getBigUint64(m + 16, true)),
    txid: v.getBigUint64(m + 48, true),
  };
}

/**
 * Visits every bucket of `file` in name order, and each one's entries in key order; keys and values are views of
 * `file`. The meta page chosen is bbolt's: the valid one with the higher transaction ID.
 */
export function readBolt(
  file: Uint8Array,
  onBucket: (name: Uint8Array) => void,
  onEntry: (key: Uint8Array, value: Uint8Array) => void,
): void {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const first = readMeta(v, 0);
  const pageSize = first?.pageSize ?? BOLT_PAGE_SIZE;
  const second = readMeta(v, pageSize);
  const meta = [first, second].filter((m) => m !== undefined).sort((a, b) => (a.txid > b.txid ? -1 : 1))[0];
  if (meta === undefined) throw new BoltFormatError("no valid meta page");
  const pageAt = (id: number): number => {
    const at = id * meta.pageSize;
    if (id < 2 || at + PAGE_HEADER > file.length) throw new BoltFormatError(`page ${id} is outside the file`);
    return at;
  };
  // the elements of the leaves of the tree rooted at the page at `at`, in order
  const walk = (at: number, depth: number, leaf: (element: number) => void): void => {
    if (depth > MAX_DEPTH) throw new BoltFormatError(`a tree deeper than ${MAX_DEPTH} pages at offset ${at}`);
    const flags = v.getUint16(at + 8, true), count = v.getUint16(at + 10, true);
    const end = at + (v.getUint32(at + 12, true) + 1) * meta.pageSize;
    if (at + PAGE_HEADER + count * ELEMENT > Math.min(end, file.length)) {
      throw new BoltFormatError(`page at offset ${at} has more elements than room`);
    }
    for (let i = 0; i < count; i++) {
      const e = at + PAGE_HEADER + i * ELEMENT;
      if (flags & LEAF_PAGE) leaf(e);
      else if (flags & BRANCH_PAGE) walk(pageAt(Number(v.getBigUint64(e + 8, true))), depth + 1, leaf);
      else throw new BoltFormatError(`page at offset ${at} is neither a branch nor a leaf (flags ${flags})`);
    }
  };
  const bytes = (at: number, n: number): Uint8Array => {
    if (at + n > file.length) throw new BoltFormatError(`an element's bytes at offset ${at} run past the file`);
    return file.subarray(at, at + n);
  };
  const leafEntry = (e: number) => {
    const pos = v.getUint32(e + 4, true), ksize = v.getUint32(e + 8, true), vsize = v.getUint32(e + 12, true);
    return {
      bucket: (v.getUint32(e, true) & BUCKET_LEAF) !== 0,
      key: bytes(e + pos, ksize),
      value: bytes(e + pos + ksize, vsize),
    };
  };
  walk(pageAt(meta.root), 0, (e) => {
    const { bucket, key: name, value } = leafEntry(e);
    if (!bucket) throw new BoltFormatError("a key outside any bucket");
    if (value.length < BUCKET_HEADER) throw new BoltFormatError("a bucket's header cut short");
    onBucket(name);
    const root = Number(new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0, true));
    // root 0: an inline bucket, its one leaf page right after the bucket header
    const at = root === 0 ? value.byteOffset - file.byteOffset + BUCKET_HEADER : pageAt(root);
    walk(at, 1, (e) => {
      const entry = leafEntry(e);
      if (entry.bucket) throw new BoltFormatError("a nested bucket (etcd makes none)");
      onEntry(entry.key, entry.value);
    });
  });
}
