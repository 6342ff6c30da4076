/** Test helpers: temp data dirs and byte/string conversions. */
import nodeAssert from "node:assert";
import { Backend, type BackendOptions } from "../../mvcc/backend.ts";
import { replayLog } from "../../mvcc/backend_log.ts";
import { BTree } from "../../mvcc/btree.ts";
import { KVStore, type KVStoreOptions } from "../../mvcc/kvstore.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export const b = (s: string): Uint8Array => enc.encode(s);
export const s = (u: Uint8Array): string => dec.decode(u);

const tempDirs = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const d of tempDirs) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** A temp dir, removed when the test module ends. */
export async function tempDir(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "detcd-mvcc-" });
  tempDirs.add(d);
  return d;
}

/** A store over a backend in `dir`; close() closes both. */
export async function openStore(
  dir: string,
  opts: KVStoreOptions = {},
  bopts: BackendOptions = {},
): Promise<{ store: KVStore; backend: Backend; close: () => Promise<void> }> {
  const backend = await Backend.openDataDir(dir, bopts);
  const store = KVStore.open(backend, opts);
  return {
    store,
    backend,
    close: async () => {
      await store.close();
      await backend.close();
    },
  };
}

/** Commits `backend` and returns the keys of `bucket` in its log file, in key order, as a reopen would see them. */
export async function committedKeys(backend: Backend, bucket: string): Promise<Uint8Array[]> {
  await backend.forceCommit();
  return await logKeys(backend.path, bucket);
}

/** The keys of `bucket` replayed from the log file at `path`, in key order. */
export async function logKeys(path: string, bucket: string): Promise<Uint8Array[]> {
  const t = new BTree<Uint8Array>();
  const f = await Deno.open(path, { read: true });
  try {
    await replayLog(path, f, (await f.stat()).size, {
      put: (bk, p, ks, ke, vs, ve) => bk === bucket && t.set(p.subarray(ks, ke), p.subarray(vs, ve)),
      delete: (bk, p, ks, ke) => bk === bucket && t.delete(p.subarray(ks, ke)),
      createBucket: () => {},
      dropBucket: () => {},
    });
  } finally {
    f.close();
  }
  const keys: Uint8Array[] = [];
  t.forEach((k) => {
    keys.push(k);
  });
  return keys;
}

// Messages are passed only when given: newer @types/node overloads reject an explicit undefined, and a message
// replaces node's diff.
export function assert(cond: unknown, msg?: string): asserts cond {
  if (msg === undefined) nodeAssert.ok(cond);
  else nodeAssert.ok(cond, msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (msg === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts fn throws an error satisfying pred (e.g. identity with an error constant). */
export function assertThrows(fn: () => unknown, pred: (e: unknown) => boolean, msg?: string): void {
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    nodeAssert.ok(pred(e), `${msg ?? "unexpected error"}: ${e}`);
  }
  nodeAssert.ok(threw, msg ?? "expected an error");
}

export async function assertRejects(fn: () => Promise<unknown>, pred: (e: unknown) => boolean): Promise<void> {
  let threw = false;
  try {
    await fn();
  } catch (e) {
    threw = true;
    nodeAssert.ok(pred(e), `unexpected error: ${e}`);
  }
  nodeAssert.ok(threw, "expected a rejection");
}
