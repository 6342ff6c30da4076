// Deletes the oldest files with a suffix beyond the newest `max` (--max-wals,
// --max-snapshots). A file someone holds a lock on — a WAL segment the live WAL still
// needs — stops the pass: everything after it is newer and needed too.

import { join } from "node:path";
import { listSuffix } from "./fs_util.ts";

/** One purge pass; returns the names removed. `max` 0 keeps everything. */
export async function purge(dir: string, suffix: string, max: number): Promise<string[]> {
  if (!(Number.isInteger(max) && max >= 0)) throw new Error(`purge: bad max ${max}`);
  const removed: string[] = [];
  if (max === 0) return removed;
  const names = await listSuffix(dir, suffix);
  for (const name of names.slice(0, Math.max(0, names.length - max))) {
    const path = join(dir, name);
    const f = await Deno.open(path, { read: true, write: true });
    try {
      if (!(await f.tryLock(true))) break;
      await Deno.remove(path);
      removed.push(name);
    } finally {
      f.close();
    }
  }
  return removed;
}
