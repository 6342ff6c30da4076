/**
 * bbolt's file format, as far as etcd's databases use it (bbolt's page.go and db.go): pages of a size the meta page
 * gives (4096 where etcd runs), each with a 16-byte header (id, flags, count, overflow); leaf elements (flags, pos,
 * ksize, vsize) and branch elements (pos, ksize, pgid) of 16 bytes, `pos` counted from the element itself; a bucket's
 * value is its header (root page, sequence), followed by its one leaf page when the bucket is inline (root 0).
 * Numbers are little-endian, as bbolt writes them on every platform etcd ships for.
 */
export const BOLT_PAGE_SIZE = 4096;
export const PAGE_HEADER = 16;
export const ELEMENT = 16;
export const BUCKET_HEADER = 16;
export const BRANCH_PAGE = 0x01;
export const LEAF_PAGE = 0x02;
export const META_PAGE = 0x04;
export const FREELIST_PAGE = 0x10;
export const BUCKET_LEAF = 0x01;
export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
/** The meta fields the checksum covers: magic to txid. */
export const META_SUMMED = 56;

/** bbolt's meta checksum: FNV-1a 64 over the meta fields before it. */
export function metaChecksum(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}
