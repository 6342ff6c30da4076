// Mixed clusters: a detcd member joins two Debian etcd 3.4 members, and an etcd member joins two detcd members, as
// etcd's runtime reconfiguration does it (member add, then the new member started with --initial-cluster-state
// existing). They share one raft log: the newcomer catches up from the entries, each applies the others' writes and
// membership records (etcd's bare v2 PUTs of a member's attributes and the cluster version), forwards its own, and
// every member ends with the same HashKV. A newcomer behind the founders' compacted log catches up by the leader's
// snapshot: an etcd leader's bbolt file and v2 store to detcd, a detcd leader's bbolt file (made for an etcd peer) and
// v2 store to etcd.
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import {
  assertOneHashKV,
  clusterFlags,
  type ClusterNode,
  ctl,
  etcdctl,
  freePort,
  putMany,
  startMember,
  tempDir,
  waitUntil,
} from "./harness.ts";
import { opts, startReferenceMember } from "./reference.ts";

const TOKEN = "mixed-cluster";
type Kind = "etcd" | "detcd";

async function node(name: string): Promise<ClusterNode> {
  return { name, client: await freePort(), peer: await freePort(), dataDir: `${await tempDir()}/${name}.etcd` };
}

const ep = (n: ClusterNode) => `127.0.0.1:${n.client}`;
const initialCluster = (ns: ClusterNode[]) => ns.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(",");

/** A running member: its stop, and its log (detcd's; etcd's goes nowhere). */
interface Running {
  stop(): Promise<unknown>;
  log(): string;
}

/** Starts `n` as an etcd or a detcd member with etcd's flags; resolves once it is running. */
async function start(kind: Kind, n: ClusterNode, flags: string[]): Promise<Running> {
  if (kind === "detcd") return await startMember({ dataDir: n.dataDir, clientPort: n.client, args: flags });
  return { stop: startReferenceMember(flags), log: () => "" };
}

/**
 * The founders make a cluster and take `puts` writes; the newcomer joins and catches up; every member's log, once all
 * have stopped. With `snapshotCount`, the founders snapshot and compact their logs as they go, so that the newcomer
 * needs the leader's snapshot.
 */
async function joinMixed(founders: Kind, newcomer: Kind, puts = 50, snapshotCount?: number): Promise<Running[]> {
  const [a, b, c] = [await node(`${founders}1`), await node(`${founders}2`), await node(`${newcomer}3`)];
  const running: Running[] = [];
  const extra = snapshotCount === undefined ? [] : [`--snapshot-count=${snapshotCount}`];
  try {
    const two = initialCluster([a, b]);
    // both founders at once: neither is ready before the other is up
    const flags = (n: ClusterNode) => [...clusterFlags(n, two, TOKEN), ...extra];
    running.push(...await Promise.all([a, b].map((n) => start(founders, n, flags(n)))));
    await waitUntil(async () => (await etcdctl(ep(a), ["put", "k", "0"])).code === 0, () => "the founders to serve");
    await putMany(ep(a), "k", puts);

    // --strict-reconfig-check (on by default) refuses a member until the founders have been connected for 5 s
    const add = ["member", "add", c.name, `--peer-urls=http://127.0.0.1:${c.peer}`];
    await waitUntil(
      async () => {
        const r = await etcdctl(ep(a), add);
        if (r.code !== 0 && !r.stderr.includes("unhealthy cluster")) throw new Error(r.stderr);
        if (r.code !== 0) await new Promise((res) => setTimeout(res, 100));
        return r.code === 0;
      },
      () => "the founders to take a new member",
      40_000,
    );
    const three = initialCluster([a, b, c]);
    running.push(await start(newcomer, c, [...clusterFlags(c, three, TOKEN), "--initial-cluster-state=existing"]));
    const last = `k${puts - 1}`;
    await waitUntil(
      async () =>
        (await etcdctl(ep(c), ["get", last, "--consistency=s", "--print-value-only"])).stdout === `${puts - 1}\n`,
      () => `${c.name} to catch up`,
      60_000,
    );
    // writes through the newcomer (forwarded to the leader) and through a founder, read on the others
    assertEquals(await ctl(ep(c), "put", "from-newcomer", "1"), "OK\n");
    assertEquals(await ctl(ep(b), "put", "from-founder", "2"), "OK\n");
    for (const n of [a, b, c]) {
      await waitUntil(
        async () =>
          (await ctl(ep(n), "get", "from-", "--prefix", "--consistency=s", "--print-value-only")) === "2\n1\n",
        () => `${n.name} to apply both writes`,
      );
      // every member applied every member's published attributes: names and client URLs
      const list = await ctl(ep(n), "member", "list");
      for (const m of [a, b, c]) {
        assertMatch(list, new RegExp(`, started, ${m.name}, http://127\\.0\\.0\\.1:${m.peer}, http://${ep(m)}, false`));
      }
    }
    await assertOneHashKV([a, b, c].map(ep));
    return running;
  } finally {
    await Promise.all(running.map((r) => r.stop()));
  }
}

Deno.test({
  name: "mixed cluster: a detcd member joins two Debian etcd members, replicates, forwards, and hashes alike",
  ...opts,
  fn: async () => void await joinMixed("etcd", "detcd"),
});

Deno.test({
  name: "mixed cluster: a Debian etcd member joins two detcd members, replicates, forwards, and hashes alike",
  ...opts,
  fn: async () => void await joinMixed("detcd", "etcd"),
});

// 7000 puts with a snapshot every 1000 entries: the leader keeps 5000 entries behind its latest snapshot, not the
// first ones the newcomer lacks
Deno.test({
  name: "mixed cluster: a detcd member behind etcd's compacted log installs an etcd leader's snapshot",
  ...opts,
  fn: async () => {
    const [, , newcomer] = await joinMixed("etcd", "detcd", 7000, 1000);
    assertMatch(newcomer.log(), /"msg":"received and saved database snapshot"/);
    assertMatch(newcomer.log(), /"msg":"rewrote etcd's bbolt backend as detcd's backend"/);
  },
});

Deno.test({
  name: "mixed cluster: an etcd member behind detcd's compacted log installs a detcd leader's snapshot (bbolt)",
  ...opts,
  fn: async () => {
    const [a, b] = await joinMixed("detcd", "etcd", 7000, 1000);
    assertMatch(a.log() + b.log(), /"msg":"sent database snapshot"/);
  },
});
