/**
 * etcd's backend (a bbolt file) rewritten as detcd's backend log, in place: the same buckets, keys and values, so the
 * store, leases and alarms restore from it as from a log detcd wrote. This is what lets detcd start on a data dir
 * etcd wrote, on one `etcdctl snapshot restore` made, and on a leader's snapshot from an etcd member. The log is
 * written beside the file, fsynced and renamed over it (the directory fsynced after): a crash leaves one or the other.
 */
import { isBoltFile, readBolt } from "./bolt_reader.ts";
import { MAGIC, OP_CREATE_BUCKET, RecordWriter } from "./backend_log.ts";
import { fsyncDir, writeAllSync } from "../wal/fs_util.ts";
import { mapFile } from "../wal/mapped_file.ts";

const RECORD_BYTES = 4 * 1024 * 1024;

export interface BoltImport {
  buckets: number;
  keys: number;
  /** The bbolt file's size and the log's. */
  boltBytes: number;
  logBytes: number;
}

/**
 * Rewrites the bbolt file at `path` as a backend log; undefined, touching nothing, when the file is missing or not
 * bbolt. A backend with etcd's authentication enabled is refused before anything is written: detcd would serve its
 * keys to anyone.
 */
export async function importBolt(path: string): Promise<BoltImport | undefined> {
  let head: Uint8Array;
  try {
    const f = await Deno.open(path, { read: true });
    try {
      head = new Uint8Array(64);
      head = head.subarray(0, (await f.read(head)) ?? 0);
    } finally {
      f.close();
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  if (!isBoltFile(head)) return undefined;
  const size = (await Deno.stat(path)).size;
  // mapped where FFI allows (the file's pages are not copied), read whole otherwise
  const bolt = mapFile(path, 0, size) ?? await Deno.readFile(path);
  const dec = new TextDecoder();
  const tmp = `${path}.import`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  let buckets = 0, keys = 0, logBytes = 0, authEnabled = false;
  try {
    // synchronous writes: the records go out as they fill, so only one is held
    const w = new RecordWriter(RECORD_BYTES + 64 * 1024);
    const flush = () => {
      if (w.ops === 0) return;
      const r = w.seal();
      writeAllSync(f, r);
      logBytes += r.length;
      w.reset();
    };
    writeAllSync(f, MAGIC);
    logBytes += MAGIC.length;
    let bucket = "";
    readBolt(bolt, (name) => {
      bucket = dec.decode(name);
      buckets++;
      w.bucketOp(OP_CREATE_BUCKET, bucket);
    }, (key, value) => {
      keys++;
      // etcd's auth store: "authEnabled" is 1 in the "auth" bucket while authentication is on
      if (bucket === "auth" && dec.decode(key) === "authEnabled" && value.length === 1 && value[0] === 1) {
        authEnabled = true;
      }
      w.put(bucket, key, value);
      if (w.payloadBytes >= RECORD_BYTES) flush();
    });
    flush();
    if (!authEnabled) await f.syncData();
  } catch (err) {
    f.close();
    await Deno.remove(tmp);
    throw err;
  }
  f.close();
  if (authEnabled) {
    await Deno.remove(tmp);
    throw new Error(
      `backend: ${path} has etcd's authentication enabled, which detcd does not serve yet: ` +
        "run `etcdctl auth disable` against etcd before moving its data dir",
    );
  }
  await Deno.rename(tmp, path);
  await fsyncDir(path.slice(0, Math.max(path.lastIndexOf("/"), 1)));
  return { buckets, keys, boltBytes: size, logBytes };
}
