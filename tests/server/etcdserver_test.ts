// EtcdServer in-process over real files: snapshots and log purging, restart from
// snapshot + WAL, group commit, auto compaction, and membership records.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert, rejects } from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema, TxnRequestSchema } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { defaultConfig, type EtcdConfig } from "../../server/config.ts";
import { EtcdServer } from "../../server/etcdserver.ts";
import { memoryLogger } from "../../server/logger.ts";
import { MetricsRegistry, ServerMetrics } from "../../server/metrics.ts";
import { ReadIndexLoop } from "../../server/read_index.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const tempDirs = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const d of tempDirs) Deno.removeSync(d, { recursive: true });
});

async function config(over: Partial<EtcdConfig> = {}): Promise<EtcdConfig> {
  const dir = await Deno.makeTempDir({ prefix: "detcd-server-" });
  tempDirs.add(dir);
  const peer = new URL("http://127.0.0.1:2380");
  return {
    ...defaultConfig(),
    name: "s1",
    dataDir: `${dir}/s1.etcd`,
    initialAdvertisePeerUrls: [peer],
    initialCluster: `s1=${peer.href}`,
    ...over,
  };
}

async function start(cfg: EtcdConfig) {
  const logger = memoryLogger("info");
  const s = await EtcdServer.create(cfg, logger, new ServerMetrics(new MetricsRegistry()));
  s.start();
  await s.ready;
  return { s, logger };
}

const put = (s: EtcdServer, k: string, v: string) =>
  s.put(create(PutRequestSchema, { key: enc.encode(k), value: enc.encode(v) }));
const get = async (s: EtcdServer, k: string, revision = 0n) => {
  const r = await s.range(create(RangeRequestSchema, { key: enc.encode(k), revision }));
  return r.kvs.length === 0 ? undefined : dec.decode(r.kvs[0].value);
};

async function files(dir: string, suffix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(suffix)) out.push(e.name);
  return out.sort();
}

Deno.test("a lone member elects itself, publishes, and sets the cluster version", async () => {
  const { s, logger } = await start(await config());
  assertEquals(s.status().leader, s.id);
  assertEquals(s.cluster.version, "3.4.0");
  assertEquals(s.cluster.list().map((m) => m.name), ["s1"]);
  assert(logger.lines.some((l) => l.includes("published local member to cluster through raft")));
  assert(logger.lines.some((l) => l.includes("enabled capabilities for version")));
  await s.stop();
});

Deno.test("snapshots every --snapshot-count entries, purges old files, restarts from snapshot + WAL", async () => {
  const cfg = await config({ snapshotCount: 20, maxSnapshots: 2 });
  let { s, logger } = await start(cfg);
  for (let i = 0; i < 130; i++) await put(s, `k${i}`, `v${i}`);
  // snapshots are written while applying goes on: the last one may still be, and the files behind it be purged
  const count = (msg: string) => logger.lines.filter((l) => l.includes(`"msg":"${msg}"`)).length;
  let snaps: string[] = [];
  for (const t = Date.now();; await new Promise((r) => setTimeout(r, 10))) {
    snaps = await files(`${cfg.dataDir}/member/snap`, ".snap");
    if (count("saved snapshot") === count("triggering snapshot") && snaps.length <= 2) break;
    assert(Date.now() - t < 10_000, `snapshots saved and purged: ${snaps}`);
  }
  assert(snaps.length >= 1, `snap files: ${snaps}`);
  assert(count("saved snapshot") >= 1);
  // as etcd logs it: the applied index that crossed the count, and the snapshot index it crossed it from
  const triggers = logger.lines.filter((l) => l.includes("triggering snapshot")).map((l) => JSON.parse(l));
  assert(triggers.length >= 1);
  for (const t of triggers) {
    assertEquals(t["local-member-snapshot-count"], 20);
    assert(t["local-member-applied-index"] - t["local-member-snapshot-index"] > 20, JSON.stringify(t));
  }
  const rev = s.store.rev;
  await s.stop();

  ({ s, logger } = await start(cfg));
  assertEquals(s.store.rev, rev);
  for (let i = 0; i < 130; i += 13) assertEquals(await get(s, `k${i}`), `v${i}`);
  assertEquals(s.cluster.list().map((m) => m.name), ["s1"]);
  assert(logger.lines.some((l) => /restarting local member/.test(l) && !/"snapshot-index":0/.test(l)));
  await put(s, "after", "restart");
  assertEquals(await get(s, "after"), "restart");
  await s.stop();
});

Deno.test("a restart's raft log starts after what the backend applied; the membership records before it are applied first", async () => {
  // a snapshot file, then more than snapshotCatchUpEntries entries applied after it, a publish with new client URLs
  // among them (the snapshot holds the old ones)
  const cfg = await config({ snapshotCount: 8000 });
  const puts = async (s: EtcdServer, prefix: string, n: number) => {
    for (let i = 0; i < n; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, n - i) }, (_, j) => put(s, `${prefix}${i + j}`, "v")));
    }
  };
  let { s } = await start(cfg);
  await puts(s, "a", 8100);
  await s.stop();
  const moved = { ...cfg, advertiseClientUrls: [new URL("http://127.0.0.1:23790")] };
  ({ s } = await start(moved));
  await puts(s, "b", 5300);
  const applied = s.store.consistentIndex;
  await s.stop();

  const logger = memoryLogger("info");
  s = await EtcdServer.create(moved, logger, new ServerMetrics(new MetricsRegistry()));
  const restart = JSON.parse(logger.lines.find((l) => l.includes('"msg":"restarting local member"'))!);
  assert(restart["snapshot-index"] > 8000, JSON.stringify(restart));
  assertEquals(restart["raft-log-first-index"], applied - 5000 + 1);
  // before raft runs: the publish after the snapshot file, not in raft's log, is applied already
  assertEquals(s.cluster.list().map((m) => [m.name, m.clientUrls]), [["s1", ["http://127.0.0.1:23790"]]]);
  s.start();
  await s.ready;
  assertEquals(s.store.consistentIndex >= applied, true);
  for (const k of ["a0", "a8099", "b0", "b5299"]) assertEquals(await get(s, k), "v", k);
  // --snapshot-count counts from the snapshot file's index, as etcd's, not from the one in memory
  await puts(s, "c", 8000 - (applied - restart["snapshot-index"]) + 10);
  for (const t = Date.now(); !logger.lines.some((l) => l.includes('"msg":"triggering snapshot"'));) {
    assert(Date.now() - t < 10_000, "a snapshot triggered");
    await new Promise((r) => setTimeout(r, 10));
  }
  const trigger = JSON.parse(logger.lines.find((l) => l.includes('"msg":"triggering snapshot"'))!);
  assertEquals(trigger["local-member-snapshot-index"], restart["snapshot-index"]);
  await put(s, "after", "restart");
  await s.stop();
  ({ s } = await start(moved));
  assertEquals(await get(s, "after"), "restart");
  await s.stop();
});

Deno.test("concurrent proposals share WAL writes (group commit)", async () => {
  const cfg = await config();
  const { s } = await start(cfg);
  const before = s.metrics.walFsyncDuration.count;
  await Promise.all(Array.from({ length: 500 }, (_, i) => put(s, `g${i}`, "x")));
  const syncs = s.metrics.walFsyncDuration.count - before;
  assert(syncs > 0 && syncs < 250, `500 concurrent puts took ${syncs} fsyncs`);
  assertEquals(await get(s, "g499"), "x");
  await s.stop();
});

Deno.test("periodic auto compaction compacts through raft", async () => {
  const { s, logger } = await start(
    await config({ autoCompactionMode: "periodic", autoCompactionRetention: "1s" }),
  );
  await put(s, "ac", "1");
  await put(s, "ac", "2");
  const deadline = Date.now() + 8000;
  // the puts are revisions 2 and 3; the compactor samples a revision and compacts at it a period later
  while (s.store.compactMainRev < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assertEquals(s.store.compactMainRev, 3, "no compaction at the puts' revision within 8s");
  await rejects(get(s, "ac", 2n), /required revision has been compacted/);
  assertEquals(await get(s, "ac"), "2");
  assert(logger.lines.some((l) => l.includes("auto compaction enabled")));
  await s.stop();
});

Deno.test("a stopped server refuses requests with etcd's error", async () => {
  const { s } = await start(await config());
  await s.stop();
  await rejects(put(s, "x", "y"), (e: Error) => {
    assertMatch(e.message, /^etcdserver: server stopped$/);
    return true;
  });
});

Deno.test("a read-only txn of serializable ranges skips the linearizable read; any other read-only txn waits for it", async () => {
  const { s } = await start(await config());
  const waits = { n: 0 };
  const wait = ReadIndexLoop.prototype.wait;
  ReadIndexLoop.prototype.wait = function (deadline) {
    waits.n++;
    return wait.call(this, deadline);
  };
  try {
    await put(s, "k", "v");
    const range = (serializable: boolean) => ({
      request: {
        case: "requestRange" as const,
        value: create(RangeRequestSchema, { key: enc.encode("k"), serializable }),
      },
    });
    const serial = await s.txn(create(TxnRequestSchema, { success: [range(true)], failure: [range(true)] }));
    const r = serial.responses[0].response;
    assert(r.case === "responseRange");
    assertEquals([dec.decode(r.value.kvs[0].value), waits.n], ["v", 0]);
    await s.txn(create(TxnRequestSchema, { success: [range(true)], failure: [range(false)] }));
    assertEquals(waits.n, 1);
    await s.txn(create(TxnRequestSchema, { success: [range(false)] }));
    assertEquals(waits.n, 2);
  } finally {
    ReadIndexLoop.prototype.wait = wait;
    await s.stop();
  }
});
