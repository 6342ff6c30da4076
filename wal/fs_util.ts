// Durable file helpers on Deno's async APIs, so the event loop keeps serving while the
// kernel writes and syncs.

import { join } from "node:path";

/** Writes all of `data` at the file's current position (write() may write less). */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/**
 * Writes all of `data` without yielding: a write into the page cache takes microseconds,
 * while an async write costs a trip through the event loop before the fsync can start.
 */
export function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += file.writeSync(data.subarray(off));
}

/** Reads the whole file from its start. */
export function readWholeSync(file: Deno.FsFile): Uint8Array {
  const { size } = file.statSync();
  const buf = new Uint8Array(size);
  file.seekSync(0, Deno.SeekMode.Start);
  let off = 0;
  while (off < size) {
    const n = file.readSync(buf.subarray(off));
    if (n === null) throw new Error(`file shrank while reading: got ${off} of ${size} bytes`);
    off += n;
  }
  return buf;
}

/** Makes a rename or create inside `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Names in `dir` ending with `suffix`, sorted (the hex names sort by sequence). */
export async function listSuffix(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(suffix)) names.push(e.name);
  return names.sort();
}

/** Writes `data` to `path` atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileDurably(dir: string, name: string, data: Uint8Array): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await writeAll(f, data);
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, join(dir, name));
  await fsyncDir(dir);
}
