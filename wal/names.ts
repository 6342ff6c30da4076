// File names of WAL segments (`seq-index.wal`) and snapshots (`term-index.snap`): two
// 16-digit hex numbers, so a lexical sort is a numeric sort.

export const WAL_SUFFIX = ".wal";
export const SNAP_SUFFIX = ".snap";

const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})(\.wal|\.snap)$/;

function hex16(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`names: ${n} is not an unsigned integer below 2^53`);
  return n.toString(16).padStart(16, "0");
}

/** Formats `%016x-%016x<suffix>`. */
export function pairName(a: number, b: number, suffix: string): string {
  return `${hex16(a)}-${hex16(b)}${suffix}`;
}

/** Parses `%016x-%016x<suffix>`; null for any other name. */
export function parsePairName(name: string, suffix: string): [number, number] | null {
  const m = NAME.exec(name);
  if (m === null || m[3] !== suffix) return null;
  const a = parseInt(m[1], 16);
  const b = parseInt(m[2], 16);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) return null;
  return [a, b];
}

export function walName(seq: number, index: number): string {
  return pairName(seq, index, WAL_SUFFIX);
}

/** [seq, index] of a segment name, or null. */
export function parseWalName(name: string): [number, number] | null {
  return parsePairName(name, WAL_SUFFIX);
}
