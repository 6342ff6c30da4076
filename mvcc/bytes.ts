/** Byte-string helpers shared by the backend and the index: keys are ordered like Go's bytes.Compare. */

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Lexicographic byte comparison: negative, zero or positive like bytes.Compare. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/**
 * Returns a copy when `b` is a view into a larger buffer: decoded protobuf fields are subarrays of the whole
 * request, and keeping them in long-lived structures would pin the entire request buffer in memory.
 */
export function ownBytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

/** One char per byte, for keying byte strings in JS maps and sets. */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}
