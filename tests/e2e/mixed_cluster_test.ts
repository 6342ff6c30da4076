// Mixed clusters: a detcd member joins two Debian etcd 3.4 members, and an etcd member joins two detcd members, as
// etcd's runtime reconfiguration does it (member add, then the new member started with --initial-cluster-state
// existing). They share one raft log: the newcomer catches up from the entries, each applies the others' writes and
// membership records (etcd's bare v2 PUTs of a member's attributes and the cluster version), forwards its own, and
// every member ends with the same HashKV.
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { clusterFlags, type ClusterNode, ctl, etcdctl, freePort, startMember, tempDir, waitUntil } from "./harness.ts";
import { opts, startReferenceMember } from "./reference.ts";

const TOKEN = "mixed-cluster";
type Kind = "etcd" | "detcd";

async function node(name: string): Promise<ClusterNode> {
  return { name, client: await freePort(), peer: await freePort(), dataDir: `${await tempDir()}/${name}.etcd` };
}

const ep = (n: ClusterNode) => `127.0.0.1:${n.client}`;
const initialCluster = (ns: ClusterNode[]) => ns.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(",");

/** Starts `n` as an etcd or a detcd member with etcd's flags; resolves once it is running, with its stop. */
async function start(kind: Kind, n: ClusterNode, flags: string[]): Promise<() => Promise<unknown>> {
  if (kind === "detcd") {
    const m = await startMember({ dataDir: n.dataDir, clientPort: n.client, args: flags });
    return () => m.stop();
  }
  return startReferenceMember(flags);
}

async function joinMixed(founders: Kind, newcomer: Kind): Promise<void> {
  const [a, b, c] = [await node(`${founders}1`), await node(`${founders}2`), await node(`${newcomer}3`)];
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const two = initialCluster([a, b]);
    // both founders at once: neither is ready before the other is up
    stops.push(...await Promise.all([a, b].map((n) => start(founders, n, clusterFlags(n, two, TOKEN)))));
    await waitUntil(async () => (await etcdctl(ep(a), ["put", "k0", "v0"])).code === 0, () => "the founders to serve");
    for (let i = 1; i < 50; i++) await ctl(ep(a), "put", `k${i}`, `v${i}`);

    // --strict-reconfig-check (on by default) refuses a member until the founders have been connected for 5 s; the
    // 100 ms between tries keep the attempts few
    const add = ["member", "add", c.name, `--peer-urls=http://127.0.0.1:${c.peer}`];
    await waitUntil(async () => {
      const r = await etcdctl(ep(a), add);
      if (r.code !== 0 && !r.stderr.includes("unhealthy cluster")) throw new Error(r.stderr);
      if (r.code !== 0) await new Promise((res) => setTimeout(res, 100));
      return r.code === 0;
    }, () => "the founders to take a new member");
    stops.push(
      await start(newcomer, c, [
        ...clusterFlags(c, initialCluster([a, b, c]), TOKEN),
        "--initial-cluster-state=existing",
      ]),
    );
    await waitUntil(
      async () => (await etcdctl(ep(c), ["get", "k49", "--consistency=s", "--print-value-only"])).stdout === "v49\n",
      () => `${c.name} to catch up`,
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
    const hashes = await Promise.all([a, b, c].map((n) => ctl(ep(n), "endpoint", "hashkv", "-w", "json")));
    assertEquals(new Set(hashes.map((t) => /"hash":(\d+)/.exec(t)![1])).size, 1, hashes.join("\n"));
  } finally {
    await Promise.all(stops.map((stop) => stop()));
  }
}

Deno.test({
  name: "mixed cluster: a detcd member joins two Debian etcd members, replicates, forwards, and hashes alike",
  ...opts,
  fn: () => joinMixed("etcd", "detcd"),
});

Deno.test({
  name: "mixed cluster: a Debian etcd member joins two detcd members, replicates, forwards, and hashes alike",
  ...opts,
  fn: () => joinMixed("detcd", "etcd"),
});
