/**
 * MVCC benchmark (not a test): puts/s of distinct keys through write transactions, ranges/s of single keys,
 * and the same through the Applier with protobuf requests, over 100k keys in a temp dir.
 *   deno run -A scripts/mvcc_bench.ts [keys]
 */
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { Backend } from "../mvcc/backend.ts";
import { KVStore } from "../mvcc/kvstore.ts";
import { Applier } from "../server/apply.ts";

const N = Number(Deno.args[0] ?? 100_000);
const enc = new TextEncoder();
const keys = Array.from({ length: N }, (_, i) => enc.encode(`/bench/key/${String(i).padStart(8, "0")}`));
const value = new Uint8Array(128).fill(0x61);

function report(name: string, n: number, ms: number) {
  console.log(
    `${name.padEnd(36)} ${Math.round(n / (ms / 1000)).toLocaleString("en").padStart(10)} ops/s  (${n} in ${
      ms.toFixed(0)
    } ms)`,
  );
}

async function run(fn: (store: KVStore, backend: Backend) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "mvcc-bench-" });
  const backend = await Backend.openDataDir(dir);
  const store = KVStore.open(backend);
  try {
    await fn(store, backend);
  } finally {
    await store.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
}

await run(async (store, backend) => {
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    store.setConsistentIndex(i + 1, 1);
    const txn = store.write();
    txn.put(keys[i], value);
    txn.end();
    if ((i & 1023) === 0) await Promise.resolve(); // let batch commits start, as a server would
  }
  await backend.forceCommit();
  report("store put (txn per key, committed)", N, performance.now() - t);

  t = performance.now();
  let found = 0;
  for (let i = 0; i < N; i++) found += store.range(keys[(i * 7919) % N]).count;
  report("store range single key", N, performance.now() - t);
  if (found !== N) throw new Error("missing keys");

  t = performance.now();
  await backend.close();
  const b2 = await Backend.open(backend.path);
  const s2 = KVStore.open(b2);
  report("reopen + index rebuild (revisions)", N, performance.now() - t);
  if (s2.rev !== store.rev) throw new Error("rev mismatch after reopen");
  await b2.close();
});

await run(async (store, backend) => {
  const a = new Applier(store);
  const puts = keys.map((key) => create(PutRequestSchema, { key, value }));
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    a.put(puts[i]);
    if ((i & 1023) === 0) await Promise.resolve();
  }
  await backend.forceCommit();
  report("applier put (committed)", N, performance.now() - t);
  const ranges = keys.map((key) => create(RangeRequestSchema, { key }));
  t = performance.now();
  for (let i = 0; i < N; i++) a.range(ranges[(i * 7919) % N]);
  report("applier range single key", N, performance.now() - t);
  const prefix = create(RangeRequestSchema, {
    key: enc.encode("/bench/key/"),
    rangeEnd: enc.encode("/bench/key0"),
    limit: 100n,
  });
  t = performance.now();
  for (let i = 0; i < 10_000; i++) a.range(prefix);
  report("applier range prefix limit 100", 10_000, performance.now() - t);
  console.log(`db size ${backend.size()} bytes, in use ${backend.sizeInUse()} bytes`);
});
