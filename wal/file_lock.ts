// Exclusive, non-blocking flock on a WAL segment: holding it is what marks a data dir as
// in use. flock conflicts across processes and across separate opens within one process,
// so purge() in the same server also sees the live WAL's segments as taken.

import { ERR_LOCKED, WalError } from "./errors.ts";

/** Opens `path` read-write and takes its lock, or fails at once if anyone holds it. */
export async function openLocked(path: string, dir: string, create = false): Promise<Deno.FsFile> {
  const f = await Deno.open(path, { read: true, write: true, create, truncate: create, mode: 0o600 });
  let locked = false;
  try {
    locked = await f.tryLock(true);
  } finally {
    if (!locked) f.close();
  }
  if (!locked) throw new WalError(`${ERR_LOCKED} ${dir} (${path})`);
  return f;
}
