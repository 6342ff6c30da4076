/** Byte-string helpers shared by the backend and the index: keys are ordered like Go's bytes.Compare. */

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Lexicographic byte comparison: negative, zero or positive like bytes.Compare. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareRanges(a, 0, a.length, b, 0, b.length);
}

/** compareBytes of a[as, ae) and b[bs, be) without views. */
export function compareRanges(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): number {
  const la = ae - as, lb = be - bs;
  const n = la < lb ? la : lb;
  for (let i = 0; i < n; i++) {
    const d = a[as + i] - b[bs + i];
    if (d !== 0) return d;
  }
  return la - lb;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/**
 * Whether keeping `b` (with `others` bytes beside it that are kept too) pins little more than itself: every copy costs
 * a new ArrayBuffer, about 200 bytes beyond its data, so a view into a buffer that holds at most VIEW_SLACK bytes else
 * is cheaper to keep (a follower's put: its key and value are views into its own raft entry's bytes).
 */
function isOwned(b: Uint8Array, others = 0): boolean {
  return b.buffer.byteLength - b.byteLength - others <= VIEW_SLACK;
}
const VIEW_SLACK = 128;

/**
 * Returns a copy when `b` is a view into a larger buffer: decoded protobuf fields are subarrays of the whole
 * request, and keeping them in long-lived structures would pin the entire request buffer in memory. Copies with
 * set(), not slice(): request bodies are node Buffers, whose slice() returns another view.
 */
export function ownBytes(b: Uint8Array): Uint8Array {
  if (b.length === 0) return EMPTY_BYTES;
  if (isOwned(b)) return b;
  const c = new Uint8Array(b.length);
  c.set(b);
  return c;
}

/** Values up to this size share one allocation with their new key (see ownKeyValue). */
const SHARED_VALUE_MAX = 1024;

/**
 * ownBytes for a new key and its first value. Both go into one ArrayBuffer when the value is small, as every
 * ArrayBuffer costs about 200 bytes beyond its data; a large value gets its own, so the key, which lives as long
 * as the key's history, does not keep it alive after it is overwritten and compacted.
 */
export function ownKeyValue(key: Uint8Array, value: Uint8Array): { key: Uint8Array; value: Uint8Array } {
  if (value.length <= SHARED_VALUE_MAX && key.buffer === value.buffer && isOwned(key, value.length)) {
    return { key, value: value.length === 0 ? EMPTY_BYTES : value };
  }
  if ((isOwned(key) && isOwned(value)) || value.length > SHARED_VALUE_MAX) {
    return { key: ownBytes(key), value: ownBytes(value) };
  }
  const buf = new Uint8Array(key.length + value.length);
  buf.set(key);
  buf.set(value, key.length);
  return { key: buf.subarray(0, key.length), value: value.length === 0 ? EMPTY_BYTES : buf.subarray(key.length) };
}

/** One char per byte, for keying byte strings in JS maps and sets. */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}
