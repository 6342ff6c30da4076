// Raft snapshots on disk (etcd's snap.Snapshotter): one file per snapshot named
// `%016x-%016x.snap` (term, index) holding snappb.snapshot{crc=1, data=2}, where data is
// the encoded raftpb.Snapshot and crc its CRC-32C. Files are written atomically; a file
// that fails to load is renamed to `.broken` so it is looked at once, not at every start.

import { join } from "node:path";
import type { Snapshot } from "../raft/types.ts";
import { crc32c } from "./crc32c.ts";
import { ERR_EMPTY_SNAPSHOT, ERR_NO_SNAPSHOT, ERR_SNAP_CRC_MISMATCH, SnapError } from "./errors.ts";
import { fsyncDir, listSuffix, writeAll, writeFileDurably } from "./fs_util.ts";
import type { WalLogger } from "./logger.ts";
import { pairName, parsePairName, SNAP_SUFFIX } from "./names.ts";
import { ProtoReader, ProtoWriter } from "./proto_wire.ts";
import { purge } from "./purge.ts";
import { decodeSnapshot, encodeSnapshot } from "./raft_codec.ts";
import type { WalSnapshot } from "./walpb.ts";

/** A backend received with a snapshot: `%016x.snap.db` (the snapshot's index). */
const DB_SUFFIX = ".snap.db";

/** Bytes of a received backend written at a time. */
const WRITE_BATCH = 1024 * 1024;

export class Snapshotter {
  constructor(readonly dir: string, private readonly log: WalLogger = () => {}) {}

  /** Persists `snap` durably; a snapshot at index 0 is empty and not saved (as in etcd). */
  async save(snap: Snapshot): Promise<void> {
    if (snap.metadata.index === 0) return;
    const body = encodeSnapshot(snap);
    const w = new ProtoWriter(body.length + 16);
    w.varintField(1, crc32c(body));
    w.bytesField(2, body);
    await writeFileDurably(this.dir, pairName(snap.metadata.term, snap.metadata.index, SNAP_SUFFIX), w.view());
  }

  /** The newest snapshot that loads cleanly. */
  load(): Promise<Snapshot> {
    return this.loadMatching(() => true);
  }

  /**
   * The newest snapshot that loads cleanly and that the WAL has a marker for (from
   * WAL.validSnapshotEntries): a snapshot file saved without its WAL marker — a crash
   * between the two — must not be used, since the WAL cannot replay from it.
   */
  loadNewestAvailable(walSnaps: WalSnapshot[]): Promise<Snapshot> {
    return this.loadMatching((s) => walSnaps.some((w) => w.index === s.metadata.index && w.term === s.metadata.term));
  }

  /** Where the backend received with the snapshot at `index` waits until it is installed (etcd's DBFilePath). */
  dbFilePath(index: number): string {
    return join(this.dir, `${index.toString(16).padStart(16, "0")}${DB_SUFFIX}`);
  }

  /**
   * Writes a backend streamed from a peer to dbFilePath(index), durably and atomically (a temporary file renamed
   * into place), so a crash leaves either no file or the whole one (etcd's SaveDBFrom). Returns its size.
   */
  async saveDbFrom(chunks: AsyncIterable<Uint8Array>, index: number): Promise<number> {
    const tmp = join(this.dir, `tmp${crypto.randomUUID()}`);
    let size = 0;
    try {
      const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
      try {
        // a socket brings ~32 KiB at a time: gathered into 1 MiB writes, not a write (a thread-pool hop) each
        const batch = new Uint8Array(WRITE_BATCH);
        let held = 0;
        for await (const c of chunks) {
          if (held + c.length > batch.length) {
            await writeAll(f, batch.subarray(0, held));
            held = 0;
          }
          if (c.length >= batch.length) await writeAll(f, c);
          else {
            batch.set(c, held);
            held += c.length;
          }
          size += c.length;
        }
        await writeAll(f, batch.subarray(0, held));
        await f.syncData();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, this.dbFilePath(index));
      await fsyncDir(this.dir);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    return size;
  }

  /**
   * Removes received backends of snapshots at or below `index` but `except`'s: once a snapshot is installed, those are
   * of snapshots raft refused or sent twice; after a restart, all but the restart snapshot's are (the leader sends
   * another).
   */
  async releaseDbsUpTo(index: number, except = -1): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await listSuffix(this.dir, DB_SUFFIX)) {
      const i = parseInt(name.slice(0, 16), 16);
      if (name.length !== 16 + DB_SUFFIX.length || !(i <= index) || i === except) continue;
      await Deno.remove(join(this.dir, name)).catch(() => {});
      removed.push(name);
    }
    return removed;
  }

  /** Keeps the newest `max` snapshot files (0 keeps all); returns the names removed. */
  purge(max: number): Promise<string[]> {
    return purge(this.dir, SNAP_SUFFIX, max);
  }

  private async loadMatching(match: (s: Snapshot) => boolean): Promise<Snapshot> {
    const names = (await listSuffix(this.dir, SNAP_SUFFIX)).filter((n) => parsePairName(n, SNAP_SUFFIX) !== null);
    for (const name of names.reverse()) {
      const snap = await this.loadFile(name);
      if (snap !== null && match(snap)) return snap;
    }
    throw new SnapError(ERR_NO_SNAPSHOT);
  }

  /** Reads one file; a broken one is renamed aside and yields null. */
  private async loadFile(name: string): Promise<Snapshot | null> {
    const path = join(this.dir, name);
    try {
      return readSnapFile(await Deno.readFile(path));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      this.log("warn", "snap: renaming broken snapshot file", { path, error: String(e) });
      await Deno.rename(path, `${path}.broken`);
      return null;
    }
  }
}

/** Decodes and verifies a snapshot file's bytes; throws SnapError or ProtoError when bad. */
function readSnapFile(b: Uint8Array): Snapshot {
  if (b.length === 0) throw new SnapError(ERR_EMPTY_SNAPSHOT);
  const r = new ProtoReader(b);
  let crc = 0;
  let data: Uint8Array = new Uint8Array(0);
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === 0x08) crc = r.uvarint();
    else if (tag === 0x12) data = r.bytes();
    else r.skip(tag & 7);
  }
  if (data.length === 0 || crc === 0) throw new SnapError(ERR_EMPTY_SNAPSHOT);
  if (crc32c(data) !== crc) throw new SnapError(ERR_SNAP_CRC_MISMATCH);
  return decodeSnapshot(data);
}
