/**
 * MVCC revisions. `main` is the store revision of a write transaction, `sub` the index of the change within it.
 * Encoded as etcd does for keys of the "key" bucket: 8-byte big-endian main, '_', 8-byte big-endian sub, plus a
 * trailing 't' for tombstones, so byte order equals revision order.
 */

export interface Revision {
  main: number;
  sub: number;
}

export const REV_BYTES_LEN = 17;
export const MARKED_REV_BYTES_LEN = 18;
export const MARK_TOMBSTONE = 0x74; // 't'
export const REV_SEPARATOR = 0x5f; // '_'

/** a > b in (main, sub) order. */
export function revGreater(a: Revision, b: Revision): boolean {
  return a.main > b.main || (a.main === b.main && a.sub > b.sub);
}

function putUint64(b: Uint8Array, off: number, n: number): void {
  // Revisions are non-negative integers below 2^53, so splitting into two 32-bit halves is exact.
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  b[off] = hi >>> 24;
  b[off + 1] = hi >>> 16;
  b[off + 2] = hi >>> 8;
  b[off + 3] = hi;
  b[off + 4] = lo >>> 24;
  b[off + 5] = lo >>> 16;
  b[off + 6] = lo >>> 8;
  b[off + 7] = lo;
}

/** The 8-byte big-endian integer at b[off] (exact below 2^53). */
export function getUint64(b: Uint8Array, off: number): number {
  const hi = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
  const lo = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
  return hi * 0x100000000 + lo;
}

/** Encodes rev, with the tombstone mark when `tombstone`. */
export function revToBytes(main: number, sub: number, tombstone = false): Uint8Array {
  const b = new Uint8Array(tombstone ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN);
  writeRev(b, main, sub, tombstone);
  return b;
}

/** revToBytes into `into`, which has its length (for a buffer used again). */
export function writeRev(into: Uint8Array, main: number, sub: number, tombstone = false): Uint8Array {
  putUint64(into, 0, main);
  into[8] = REV_SEPARATOR;
  putUint64(into, 9, sub);
  if (tombstone) into[17] = MARK_TOMBSTONE;
  return into;
}

export function bytesToRev(b: Uint8Array): Revision {
  if (b.length < REV_BYTES_LEN) throw new Error(`mvcc: invalid revision bytes of length ${b.length}`);
  return { main: getUint64(b, 0), sub: getUint64(b, 9) };
}

export function isTombstone(b: Uint8Array): boolean {
  return b.length === MARKED_REV_BYTES_LEN && b[17] === MARK_TOMBSTONE;
}

/** Big-endian 8-byte encoding of a non-negative integer below 2^53 (meta bucket values). */
export function uint64ToBytes(n: number): Uint8Array {
  const b = new Uint8Array(8);
  putUint64(b, 0, n);
  return b;
}

export function bytesToUint64(b: Uint8Array): number {
  if (b.length !== 8) throw new Error(`mvcc: invalid uint64 bytes of length ${b.length}`);
  return getUint64(b, 0);
}

/** A string identifying a revision, for sets of revisions. */
export function revKey(main: number, sub: number): string {
  return `${main}_${sub}`;
}
