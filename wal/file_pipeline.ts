// Prepares the next WAL segment in the background (etcd's filePipeline): a locked,
// preallocated `N.tmp` file is ready before the current segment fills, so cutting a new
// segment costs a rename instead of a create + allocate on the commit path.
// Deno has no fallocate; growing with ftruncate reserves the size (sparse), like etcd's
// fallback on filesystems without fallocate.

import { join } from "node:path";
import { openLocked } from "./file_lock.ts";

export interface PreparedFile {
  path: string;
  file: Deno.FsFile;
}

type Outcome = { ok: PreparedFile } | { err: unknown };

export class FilePipeline {
  private count = 0;
  private next: Promise<Outcome>;

  constructor(private readonly dir: string, private readonly size: number) {
    this.next = this.prepare();
  }

  private prepare(): Promise<Outcome> {
    // Alternate names so the file being handed out never shares a name with the next one.
    const path = join(this.dir, `${this.count++ % 2}.tmp`);
    // Settled into a value at once so a failure waits for take() instead of going unhandled.
    return (async () => {
      const file = await openLocked(path, this.dir, true);
      try {
        await file.truncate(this.size);
      } catch (e) {
        file.close();
        throw e;
      }
      return { path, file };
    })().then((ok) => ({ ok }), (err) => ({ err }));
  }

  /** The prepared file (its write position at 0); starts preparing the one after. */
  async take(): Promise<PreparedFile> {
    const out = await this.next;
    if ("err" in out) throw out.err;
    this.next = this.prepare();
    return out.ok;
  }

  /** Removes the unused prepared file. */
  async close(): Promise<void> {
    const out = await this.next;
    if ("err" in out) return;
    out.ok.file.close();
    await Deno.remove(out.ok.path);
  }
}
