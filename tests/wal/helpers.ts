// Shared fixtures for the WAL tests: temp dirs, entry builders, a capturing logger.

import type { Entry } from "../../raft/types.ts";
import type { WalLogger } from "../../wal/wal.ts";

export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "detcd-wal-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Entries lo..hi inclusive at `term`; data encodes index and term so overwrites show. */
export function ents(lo: number, hi: number, term = 1, size = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) {
    const data = new Uint8Array(size);
    new DataView(data.buffer).setUint32(0, i);
    if (size >= 8) new DataView(data.buffer).setUint32(4, term);
    out.push({ term, index: i, type: 0, data });
  }
  return out;
}

export interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export function captureLogger(): { lines: LogLine[]; logger: WalLogger } {
  const lines: LogLine[] = [];
  return { lines, logger: (level, msg, fields) => lines.push({ level, msg, fields }) };
}
