// Crash and restart with real processes and real files: nothing acknowledged is lost,
// a torn WAL tail is repaired, and a corrupt WAL keeps the member from starting.
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { KV } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { ctl, etcdctl, freePort, type Member, noEtcdctl, startMember, tempDir, waitUntil } from "./harness.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();
const dec = new TextDecoder();

// Connect over HTTP/1.1: Deno's node:http2 client can abort the test process when a
// server it talks to goes away (denoland/deno#36788); gRPC itself is covered by etcdctl.
function kvClient(port: number) {
  return createClient(KV, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
}

async function walFiles(dataDir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${dataDir}/member/wal`)) if (e.name.endsWith(".wal")) names.push(e.name);
  return names.sort().map((n) => `${dataDir}/member/wal/${n}`);
}

Deno.test({
  name: "restart keeps every key, revision and the compaction state",
  ignore: noEtcdctl,
  ...opts,
  fn: async () => {
    const dataDir = `${await tempDir()}/r.etcd`;
    let m = await startMember({ dataDir });
    for (let i = 0; i < 20; i++) await ctl(m.endpoint, "put", `k${i % 5}`, `v${i}`);
    const before = JSON.parse(await ctl(m.endpoint, "get", "k", "--prefix", "-w", "json"));
    await ctl(m.endpoint, "compaction", "10");
    assertEquals(await m.stop(), 0);
    assertMatch(m.log(), /closed etcd server/);

    m = await startMember({ dataDir, clientPort: m.clientPort });
    const after = JSON.parse(await ctl(m.endpoint, "get", "k", "--prefix", "-w", "json"));
    assertEquals(after.kvs, before.kvs);
    assertEquals(after.header.revision, before.header.revision);
    assertEquals(after.header.member_id, before.header.member_id);
    assertEquals(after.header.cluster_id, before.header.cluster_id);
    const old = await kvClient(m.clientPort).range({ key: enc.encode("k0"), revision: 5n }).catch((e) => e);
    assertMatch(String(old), /required revision has been compacted/);
    // put i lands at revision i+2; k1 got v6 at 8 and v11 at 13
    assertEquals(await ctl(m.endpoint, "get", "k1", "--rev=12", "--print-value-only"), "v6\n");
    assertEquals(await ctl(m.endpoint, "get", "k1", "--rev=13", "--print-value-only"), "v11\n");
    assertEquals(await m.stop(), 0);
  },
});

Deno.test({
  name: "a restart replays a WAL and a backend of several chunks alike, mapped or read (without FFI)",
  ignore: noEtcdctl,
  ...opts,
  fn: async () => {
    const dataDir = `${await tempDir()}/f.etcd`;
    let m = await startMember({ dataDir });
    const client = kvClient(m.clientPort);
    // ~9 MB: past the backend's 4 MiB chunks and the WAL's first 4 MiB
    const big = new Uint8Array(600 * 1024);
    for (let i = 0; i < 15; i++) {
      big.fill(i + 1);
      await client.put({ key: enc.encode(`big${i}`), value: big });
      await client.put({ key: enc.encode(`small${i}`), value: enc.encode(`v${i}`) });
    }
    const hashKv = async (endpoint: string) =>
      JSON.parse(await ctl(endpoint, "endpoint", "hashkv", "-w", "json"))[0].HashKV.hash;
    const want = await hashKv(m.endpoint);
    assertEquals(await m.stop(), 0);
    for (const denyFfi of [true, false]) {
      m = await startMember({ dataDir, clientPort: m.clientPort, denyFfi });
      assertEquals(await hashKv(m.endpoint), want, `hash after a restart ${denyFfi ? "without" : "with"} FFI`);
      const got = await kvClient(m.clientPort).range({ key: enc.encode("big7") });
      assertEquals([got.kvs[0].value.length, got.kvs[0].value[0], got.kvs[0].value.at(-1)], [600 * 1024, 8, 8]);
      assertEquals(await ctl(m.endpoint, "get", "small14", "--print-value-only"), "v14\n");
      assertEquals(await m.stop(), 0);
    }
  },
});

/** Puts from 16 clients, then `stopIt` mid-load, a restart, and a check that every acknowledged put survived. */
async function putLoadThen(stopIt: (m: Member) => Promise<void>) {
  const dataDir = `${await tempDir()}/k.etcd`;
  let m = await startMember({ dataDir });
  const client = kvClient(m.clientPort);
  const acked = new Map<string, string>();
  let stop = false;
  const workers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const key = `w${w}/k${i % 50}`;
      const value = `v${i}`;
      try {
        await client.put({ key: enc.encode(key), value: enc.encode(value) });
        acked.set(key, value); // only the last acknowledged value of a key counts
      } catch {
        return; // the server went away under us; unacknowledged puts may or may not be there
      }
    }
  });
  await new Promise((r) => setTimeout(r, 1500));
  await stopIt(m);
  stop = true;
  await Promise.all(workers);
  assert(acked.size > 100, `too few puts were acknowledged before the stop: ${acked.size}`);

  m = await startMember({ dataDir, clientPort: m.clientPort });
  const c2 = kvClient(m.clientPort);
  const got = await c2.range({ key: enc.encode("w"), rangeEnd: enc.encode("x") });
  const have = new Map(got.kvs.map((kv) => [dec.decode(kv.key), dec.decode(kv.value)]));
  for (const [k, v] of acked) {
    const h = have.get(k);
    assertNotEquals(h, undefined, `acknowledged key ${k} is missing after the stop`);
    // a later put may have been applied without its reply: never an older value
    assert(Number(h!.slice(1)) >= Number(v.slice(1)), `key ${k}: had ${v} acknowledged, found ${h}`);
  }
  assertEquals(await m.stop(), 0);
}

Deno.test({
  name: "kill -9 in the middle of a put load loses no acknowledged put",
  ...opts,
  fn: () => putLoadThen((m) => m.kill()),
});

Deno.test({
  name: "SIGTERM in the middle of a put load: a clean exit, no acknowledged put lost",
  ...opts,
  fn: () =>
    putLoadThen(async (m) => {
      assertEquals(await m.stop(), 0);
      assertMatch(m.log(), /closed etcd server/);
    }),
});

Deno.test({
  name: "a WAL cut mid-record is repaired on open and logged",
  ...opts,
  fn: async () => {
    const dataDir = `${await tempDir()}/t.etcd`;
    let m = await startMember({ dataDir });
    const client = kvClient(m.clientPort);
    for (let i = 0; i < 10; i++) await client.put({ key: enc.encode(`t${i}`), value: enc.encode("x".repeat(100)) });
    await m.kill();
    // cut the last segment in the middle of its last record: what a crash mid-write leaves
    const wal = (await walFiles(dataDir)).at(-1)!;
    const bytes = await Deno.readFile(wal);
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    const cut = end - 40;
    assert(cut > 0);
    await Deno.writeFile(wal, bytes.slice(0, cut));

    m = await startMember({ dataDir, clientPort: m.clientPort });
    assertMatch(m.log(), /torn|truncat|repair/i);
    const got = await kvClient(m.clientPort).range({ key: enc.encode("t"), rangeEnd: enc.encode("u") });
    assert(got.kvs.length >= 9, `expected the entries before the torn one, got ${got.kvs.length}`);
    assertEquals(await m.stop(), 0);
  },
});

Deno.test({
  name: "a flipped byte in the middle of the WAL stops the member with a clear error",
  ...opts,
  fn: async () => {
    const dataDir = `${await tempDir()}/c.etcd`;
    let m = await startMember({ dataDir });
    const client = kvClient(m.clientPort);
    for (let i = 0; i < 50; i++) await client.put({ key: enc.encode(`c${i}`), value: enc.encode("y".repeat(200)) });
    await m.stop();
    const wal = (await walFiles(dataDir))[0];
    const bytes = await Deno.readFile(wal);
    // flip a byte inside an entry's value, far from the tail
    const at = bytes.indexOf("y".charCodeAt(0), 2000);
    assert(at > 0);
    bytes[at] ^= 0xff;
    await Deno.writeFile(wal, bytes);

    m = await startMember({ dataDir, clientPort: await freePort(), expectExit: true });
    const code = await m.stop();
    assertNotEquals(code, 0);
    assertMatch(m.log(), /crc mismatch/);
    assert(!m.log().includes("ready to serve client requests"));
  },
});

Deno.test({
  name: "a snapshot being written does not hold the apply: writes go on, and it is saved once it can be",
  ...opts,
  fn: async () => {
    const hold = `${await tempDir()}/hold-snapshot`;
    await Deno.writeTextFile(hold, "");
    const m = await startMember({
      env: { DETCD_FAILPOINTS: `beforeSnapshotCommit=wait-while-file:${hold}` },
      extraArgs: ["--snapshot-count=10"],
    });
    try {
      const snapshots = (msg: string) => m.log().split("\n").filter((l) => l.includes(`"msg":"${msg}"`)).length;
      for (let i = 0; i < 12; i++) await ctl(m.endpoint, "put", `k${i}`, `${i}`);
      await waitUntil(() => snapshots("triggering snapshot") === 1, () => `a snapshot to start:\n${m.log()}`);
      // held before its backend commit: the writes after it are applied all the same
      for (let i = 12; i < 30; i++) await ctl(m.endpoint, "put", `k${i}`, `${i}`);
      assertEquals(await ctl(m.endpoint, "get", "k29", "--print-value-only"), "29\n");
      assertEquals([snapshots("triggering snapshot"), snapshots("saved snapshot")], [1, 0]);
      await Deno.remove(hold);
      await waitUntil(() => snapshots("saved snapshot") === 1, () => `the snapshot to be saved:\n${m.log()}`);
    } finally {
      await Deno.remove(hold).catch(() => {}); // a member stopping waits for its snapshot
      await m.stop();
    }
  },
});

Deno.test({
  name: "a failed backend commit stops the member at once, loudly; no acknowledged write is lost",
  ...opts,
  fn: async () => {
    const dataDir = `${await tempDir()}/f.etcd`;
    const trigger = `${await tempDir()}/fail-commits`;
    const env = { DETCD_FAILPOINTS: `backendBeforeCommit=error-while-file:${trigger}` };
    const m = await startMember({ dataDir, env });
    await ctl(m.endpoint, "put", "before", "1");
    // from now on every backend commit fails, as on a full disk
    await Deno.writeTextFile(trigger, "");
    const r = await etcdctl(m.endpoint, ["put", "during", "2"]);
    // the next commit (within the 100 ms batch interval) fails: the member exits by itself, non-zero
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      m.child.status.then((st) => st.code),
      new Promise<string>((resolve) => timer = setTimeout(() => resolve("still running"), 20_000)),
    ]);
    clearTimeout(timer);
    assertEquals(exited, 1, m.log());
    assertMatch(m.log(), /"msg":"failed to commit backend transaction"/);
    assertMatch(m.log(), /failpoint backendBeforeCommit: injected I\/O error/);
    await Deno.remove(trigger);
    const again = await startMember({ dataDir, clientPort: m.clientPort });
    try {
      assertEquals(await ctl(again.endpoint, "get", "before", "--print-value-only"), "1\n");
      // acknowledged before the member stopped: in the WAL, so applied again
      if (r.code === 0) assertEquals(await ctl(again.endpoint, "get", "during", "--print-value-only"), "2\n");
    } finally {
      await again.stop();
    }
  },
});
