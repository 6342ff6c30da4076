// Three detcd members on loopback, from the flags three etcd members would take: they elect a leader, replicate
// through etcd's peer pipeline, forward a follower's writes, lose the leader to kill -9 without losing a write, and
// the restarted member catches up to the same HashKV.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { Backend, BUCKET } from "../../mvcc/backend.ts";
import { MessageType } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";
import { StreamEncoder } from "../../server/peer/stream.ts";
import { decodeKeyValue, storedValue } from "../../mvcc/kv_codec.ts";
import {
  assertOneHashKV,
  clusterFlags,
  ctl,
  etcdctl,
  freePort,
  type Member,
  noEtcdctl,
  putMany,
  spawnEtcdctl,
  startMember,
  tempDir,
  waitUntil,
  watchersAre,
} from "./harness.ts";

const opts = { ignore: noEtcdctl, sanitizeResources: false, sanitizeOps: false };

interface Node {
  name: string;
  client: number;
  peer: number;
  dataDir: string;
  member?: Member;
}

function flags(n: Node, cluster: string): string[] {
  return clusterFlags(n, cluster, "cluster-test");
}

/** What an etcd 3.4 peer says of its version on every raft request. */
const V34 = { "x-server-version": "3.4.23", "x-min-cluster-version": "3.0.0" };

/** Three members' ports and data dirs, the --initial-cluster naming them, and a start that takes extra flags. */
async function threeNodes(
  extra: string[] = [],
  env: Record<string, string> | ((n: Node) => Record<string, string>) = {},
) {
  const nodes: Node[] = [];
  for (const name of ["n1", "n2", "n3"]) {
    nodes.push({ name, client: await freePort(), peer: await freePort(), dataDir: `${await tempDir()}/${name}.etcd` });
  }
  const cluster = nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(",");
  const args = (n: Node) => [...flags(n, cluster), ...extra];
  const start = async (n: Node) => {
    n.member = await startMember({
      dataDir: n.dataDir,
      clientPort: n.client,
      args: args(n),
      env: typeof env === "function" ? env(n) : env,
    });
  };
  /** Starts all three (none is ready before a quorum is up, so together): the member IDs, the leader's, its node. */
  const up = async () => {
    await Promise.all(nodes.map(start));
    const ids = await Promise.all(nodes.map(status));
    const leaderId = ids[0].leader;
    const leader = nodes[ids.findIndex((s) => s.id === leaderId)];
    return { ids, leaderId, leader, followers: nodes.filter((n) => n !== leader) };
  };
  return { nodes, start, args, up };
}

const ep = (n: Node) => `127.0.0.1:${n.client}`;

/** `member list` on `on` shows every one of `nodes` started: its name, peer and client URLs. */
async function assertAllStarted(nodes: Node[], on: Node): Promise<void> {
  const list = await ctl(ep(on), "member", "list");
  for (const n of nodes) {
    assertMatch(list, new RegExp(`, started, ${n.name}, http://127\\.0\\.0\\.1:${n.peer}, http://${ep(n)}, false`));
  }
}

/** A member's link-fault file: the rules written there cut its links (DETCD_LINK_FAULTS, server/peer/link_faults.ts). */
const links = (n: Node) => `${n.dataDir}.links`;

/** threeNodes whose members each take their link faults from links(n). */
function threeNodesWithLinks(extra: string[] = []) {
  return threeNodes(extra, (n) => ({ DETCD_LINK_FAULTS: links(n) }));
}

/** The member ID (hex) each endpoint answers with, and the leader's. */
async function status(n: Node): Promise<{ id: string; leader: string }> {
  const text = await ctl(`127.0.0.1:${n.client}`, "endpoint", "status", "-w", "json");
  // decimal 64-bit numbers: read from the text, JSON.parse would round them
  const id = BigInt(/"member_id":(\d+)/.exec(text)![1]).toString(16);
  const leader = BigInt(/"leader":(\d+)/.exec(text)![1]).toString(16);
  return { id, leader };
}

Deno.test({
  name: "cluster: three members bootstrap, replicate, forward writes and survive the leader's kill -9",
  ...opts,
  fn: async () => {
    const { nodes, start, up } = await threeNodes();
    try {
      const { ids, leaderId, leader, followers } = await up();
      await assertAllStarted(nodes, nodes[0]);
      assertEquals(ids.map((s) => s.leader), [leaderId, leaderId, leaderId], "one leader, seen by all");
      // etcd's peer metrics: every peer connected, traffic and round trips to each (the prober runs every second)
      await waitUntil(async () => {
        const text = await (await fetch(`http://${ep(nodes[0])}/metrics`)).text();
        return ids.slice(1).every(({ id }) =>
          text.includes(`etcd_network_active_peers{Local="${ids[0].id}",Remote="${id}"} 1`) &&
          /etcd_network_peer_sent_bytes_total\{To="[0-9a-f]+"\} [1-9]/.test(text) &&
          new RegExp(`etcd_network_peer_received_bytes_total\\{From="${id}"\\} [1-9]`).test(text) &&
          new RegExp(`etcd_network_peer_round_trip_time_seconds_count\\{To="${id}"\\} [1-9]`).test(text)
        );
      }, () => "peer metrics on the first member");

      // a write on each member (followers forward to the leader), read back everywhere
      for (const [i, n] of nodes.entries()) await ctl(ep(n), "put", `k${i}`, `v${i}`);
      for (const n of nodes) {
        assertEquals(await ctl(ep(n), "get", "k", "--prefix", "--print-value-only"), "v0\nv1\nv2\n");
      }

      // leases: granted anywhere (through raft), kept alive and read on followers (forwarded to the leader's lessor)
      const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep(followers[0]), "lease", "grant", "60"))![1];
      await ctl(ep(followers[1]), "put", `--lease=${lease}`, "leased", "x");
      for (const f of followers) {
        assertEquals(
          await ctl(ep(f), "lease", "keep-alive", "--once", lease),
          `lease ${lease} keepalived with TTL(60)\n`,
        );
        assertMatch(
          await ctl(ep(f), "lease", "timetolive", lease, "--keys"),
          new RegExp(
            `^lease ${lease} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[leased\\]\\)`,
          ),
        );
      }
      assertMatch(await ctl(ep(followers[0]), "lease", "timetolive", "1234"), /lease 0000000000001234 already expired/);

      // a watcher on a follower, fed by that member's own apply loop, across the leader's death
      const watcher = spawnEtcdctl(ep(followers[0]), ["watch", "--prefix", "m"]);
      await watchersAre(ep(followers[0]), 1);

      // the leader dies: the others elect a new one, and writes go on. A put sent to a follower at once is held until
      // the new leader can take it: forwarded to the dead one, it would be lost and time out.
      await leader.member!.kill();
      const survivors = nodes.filter((n) => n !== leader);
      const first = await etcdctl(ep(survivors[0]), ["--command-timeout=20s", "put", "after", "1"]);
      assertEquals([first.code, first.stdout, first.stderr], [0, "OK\n", ""]);
      for (let i = 0; i < 20; i++) await ctl(ep(survivors[i % 2]), "put", `m${i}`, `${i}`);
      const newLeader = (await status(survivors[0])).leader;
      // every event once, in order, on the follower's watcher
      await waitUntil(() => watcher.stdout().includes("m19"), () => `the watcher to see m19: ${watcher.stdout()}`);
      await watcher.stop();
      const events = watcher.stdout().trim().split("\n");
      assertEquals(events.length, 60, watcher.stdout());
      assertEquals(
        Array.from({ length: 20 }, (_, i) => events.slice(3 * i, 3 * i + 3).join(" ")),
        Array.from({ length: 20 }, (_, i) => `PUT m${i} ${i}`),
      );
      // the lease lives on under the new leader, kept alive from either survivor
      for (const n of survivors) {
        assertEquals(
          await ctl(ep(n), "lease", "keep-alive", "--once", lease),
          `lease ${lease} keepalived with TTL(60)\n`,
        );
      }
      assertEquals(newLeader !== leaderId && survivors.some((n) => ids[nodes.indexOf(n)].id === newLeader), true);

      // the dead member comes back from its WAL and catches up: the same data on all three
      await start(leader);
      await waitUntil(
        async () => (await ctl(ep(leader), "get", "m19", "--consistency=s", "--print-value-only")) === "19\n",
        () => "the restarted member to catch up",
      );
      await assertOneHashKV(nodes.map(ep));

      // move-leader: etcdctl finds the leader, which hands over to the member asked for
      const all = nodes.map(ep).join(",");
      const current = (await status(nodes[0])).leader;
      const target = ids.find((s) => s.id !== current)!.id;
      assertEquals(await ctl(all, "move-leader", target), `Leadership transferred from ${current} to ${target}\n`);
      assertEquals((await status(nodes[0])).leader, target);
      const follower = nodes[ids.findIndex((s) => s.id !== target)];
      const refused = await etcdctl(ep(follower), ["move-leader", target]);
      assertMatch(refused.stderr, /no leader endpoint given|not leader/);

      // a leader stopped with SIGTERM hands leadership over before it goes
      const targetNode = nodes[ids.findIndex((s) => s.id === target)];
      assertEquals(await targetNode.member!.stop(), 0);
      assertMatch(targetNode.member!.log(), /"msg":"leadership transfer finished"/);
      const rest = nodes.filter((n) => n !== targetNode);
      const after = await status(rest[0]);
      assertEquals(after.leader !== target && after.leader !== "0", true, JSON.stringify(after));
      assertEquals(await ctl(ep(rest[1]), "put", "handover", "ok"), "OK\n");
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "peer pipeline and streams: another cluster's traffic is refused with etcd's 412, garbage with 400",
  ...opts,
  fn: async () => {
    const m = await startMember();
    try {
      const cid = BigInt(/"cluster_id":(\d+)/.exec(await ctl(m.endpoint, "endpoint", "status", "-w", "json"))![1]);
      const post = async (clusterId: bigint, body: Uint8Array) => {
        const r = await fetch(`http://127.0.0.1:${m.peerPort}/raft`, {
          method: "POST",
          body: body as Uint8Array<ArrayBuffer>,
          headers: { ...V34, "x-etcd-cluster-id": clusterId.toString(16), "x-server-from": "1" },
        });
        return [r.status, await r.text(), r.headers.get("x-etcd-cluster-id")];
      };
      assertEquals(await post(cid + 1n, new Uint8Array(0)), [412, "cluster ID mismatch\n", cid.toString(16)]);
      // a peer of another major.minor (or one that says nothing: etcd 2.0) is refused before its cluster is looked at
      const versions: Record<string, string>[] = [{}, {
        "x-server-version": "2.3.8",
        "x-min-cluster-version": "2.3.0",
      }];
      for (const version of versions) {
        const r = await fetch(`http://127.0.0.1:${m.peerPort}/raft`, {
          method: "POST",
          body: new Uint8Array(0),
          headers: { ...version, "x-etcd-cluster-id": cid.toString(16), "x-server-from": "1" },
        });
        assertEquals([r.status, await r.text()], [412, "incompatible version\n"]);
      }
      const future = await fetch(`http://127.0.0.1:${m.peerPort}/raft`, {
        method: "POST",
        body: new Uint8Array(0),
        headers: {
          ...V34,
          "x-min-cluster-version": "3.5.0",
          "x-etcd-cluster-id": cid.toString(16),
          "x-server-from": "1",
        },
      });
      assertEquals([future.status, await future.text()], [412, "incompatible version\n"]);
      assertEquals(await post(cid, Uint8Array.of(0xff, 0xff)), [
        400,
        "error unmarshalling raft message\n",
        cid.toString(16),
      ]);
      // streams: only members may dial one, and only to the member they mean
      const stream = async (method: string, path: string, headers: Record<string, string>) => {
        const r = await fetch(`http://127.0.0.1:${m.peerPort}${path}`, { method, headers });
        return [r.status, await r.text()];
      };
      const id = BigInt(/"member_id":(\d+)/.exec(await ctl(m.endpoint, "endpoint", "status", "-w", "json"))![1]);
      const ok = {
        ...V34,
        "x-etcd-cluster-id": cid.toString(16),
        "x-raft-to": id.toString(16),
        "x-server-from": "1234",
      };
      assertEquals(await stream("GET", "/raft/stream/message/1234", ok), [404, "error sender not found\n"]);
      assertEquals(await stream("GET", "/raft/stream/msgappv2/1234", { ...ok, "x-etcd-cluster-id": "1" }), [
        412,
        "cluster ID mismatch\n",
      ]);
      assertEquals(await stream("POST", "/raft/stream/message/1234", ok), [405, "Method Not Allowed\n"]);
      assertEquals(await stream("GET", "/raft/stream/other/1234", ok), [404, "invalid path\n"]);
      // the snapshot endpoint takes a length-prefixed MsgSnap and nothing else
      const snapPost = async (body: Uint8Array) => {
        const r = await fetch(`http://127.0.0.1:${m.peerPort}/raft/snapshot`, {
          method: "POST",
          body: body as Uint8Array<ArrayBuffer>,
          headers: { ...V34, "x-etcd-cluster-id": cid.toString(16), "x-server-from": "1234" },
        });
        return [r.status, await r.text()];
      };
      const heartbeat = new StreamEncoder("message").encode([newMessage(MessageType.MsgHeartbeat, id, 0x1234n)]);
      assertEquals(await snapPost(heartbeat), [400, "wrong raft message type\n"]);
      assertEquals(await snapPost(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff)), [
        400,
        "failed to decode raft message (proto: unexpected end of message)\n",
      ]);
      assertEquals(await ctl(m.endpoint, "put", "still", "serving"), "OK\n");
    } finally {
      await m.stop();
    }
  },
});

Deno.test({
  name:
    "deno task cluster: three members in one command, healthy together (concurrent reads on followers), Ctrl-C stops them",
  ...opts,
  fn: async () => {
    const dir = await tempDir();
    const clients = [await freePort(), await freePort(), await freePort()];
    const peers = [await freePort(), await freePort(), await freePort()];
    const launcher = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../scripts/local_cluster.ts", import.meta.url).pathname,
        `--dir=${dir}`,
        `--client-ports=${clients.join(",")}`,
        `--peer-ports=${peers.join(",")}`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const eps = clients.map((p) => `127.0.0.1:${p}`).join(",");
      // endpoint health reads on every member at once: followers' ReadIndex requests reach the leader together
      await waitUntil(
        async () => (await etcdctl(eps, ["endpoint", "health", "--cluster"])).code === 0,
        () => "the cluster to be healthy",
        30_000,
      );
      for (let i = 0; i < 3; i++) assertEquals((await etcdctl(eps, ["endpoint", "health", "--cluster"])).code, 0);
      const list = await ctl(eps.split(",")[0], "member", "list");
      for (const name of ["infra1", "infra2", "infra3"]) assertMatch(list, new RegExp(`, started, ${name}, `));
      // the README's tables: every member listed, one leader among the three
      const table = await ctl(eps.split(",")[0], "member", "list", "-w", "table");
      for (const [i, name] of ["infra1", "infra2", "infra3"].entries()) {
        assertMatch(table, new RegExp(`\\| started \\| ${name} \\| http://127\\.0\\.0\\.1:${peers[i]} \\|`));
      }
      const status = await ctl(eps.split(",")[0], "endpoint", "status", "--cluster", "-w", "table");
      assertEquals(status.match(/\| +true +\| +false +\|/g)?.length, 1, status);
      assertEquals(status.match(/\| +false +\| +false +\|/g)?.length, 2, status);
      launcher.kill("SIGINT");
      assertEquals((await launcher.status).code, 0);
      for (const name of ["infra1", "infra2", "infra3"]) {
        assertMatch(await Deno.readTextFile(`${dir}/${name}.log`), /"msg":"ready to serve client requests"/);
      }
    } finally {
      try {
        launcher.kill("SIGKILL");
      } catch { /* already gone */ }
      await launcher.status;
    }
  },
});

Deno.test({
  name: "cluster: a follower paused while its entries are compacted away catches up by the leader's snapshot",
  ...opts,
  fn: async () => {
    const { nodes, start, up } = await threeNodes(["--snapshot-count=1000"]);
    try {
      const { leader, followers: [lagging, other] } = await up();
      await ctl(ep(leader), "put", "before", "0");
      // a watcher on the member that will fall behind: it must see every write once, in order, after the snapshot
      const watcher = spawnEtcdctl(ep(lagging), ["watch", "--prefix", "s/"]);
      await watchersAre(ep(lagging), 1);
      lagging.member!.child.kill("SIGSTOP");
      // more than the 5000 entries a leader keeps behind its snapshot: the paused member's next ones are gone
      const total = 6500;
      await putMany(ep(leader), "s/", total);
      // a lease and its key that the paused member learns of only from the snapshot
      const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep(other), "lease", "grant", "600"))![1];
      await ctl(ep(other), "put", `--lease=${lease}`, "leased", "x");
      await putMany(ep(other), "t/", 10);
      assertMatch(leader.member!.log(), /"msg":"saved snapshot"/);
      lagging.member!.child.kill("SIGCONT");
      await waitUntil(
        async () => (await ctl(ep(lagging), "get", "t/9", "--consistency=s", "--print-value-only")) === "9\n",
        () => "the paused member to catch up",
        30_000,
      );
      assertMatch(leader.member!.log(), /"msg":"sent database snapshot"/);
      assertMatch(lagging.member!.log(), /"msg":"applied snapshot"/);
      const hashes = async () => {
        const texts = await Promise.all(nodes.map((n) => ctl(ep(n), "endpoint", "hashkv", "-w", "json")));
        return new Set(texts.map((t) => /"hash":(\d+)/.exec(t)![1])).size;
      };
      assertEquals(await hashes(), 1);
      // its lessor took the lease with the key attached: the revocation deletes the key there too
      await ctl(ep(leader), "lease", "revoke", lease);
      await waitUntil(
        async () => (await ctl(ep(lagging), "get", "leased", "--consistency=s")) === "",
        () => "the revoked lease's key to go on the member that got the snapshot",
      );
      assertEquals(await hashes(), 1);
      await waitUntil(() => watcher.stdout().includes(`s/${total - 1}\n`), () => "the watcher to see the last put");
      await watcher.stop();
      const lines = watcher.stdout().trim().split("\n");
      assertEquals(lines.length, 3 * total);
      const seen = new Set<string>();
      for (let i = 0; i < lines.length; i += 3) {
        assertEquals([lines[i], lines[i + 1]], ["PUT", `s/${lines[i + 2]}`]);
        seen.add(lines[i + 1]);
      }
      assertEquals(seen.size, total, "every put seen once");

      // the installed snapshot survives a crash: the member restarts from it and its WAL
      await lagging.member!.kill();
      await start(lagging);
      assertEquals(await ctl(ep(lagging), "get", "s/6499", "--consistency=s", "--print-value-only"), "6499\n");
      await ctl(ep(lagging), "put", "after", "1");
      await waitUntil(async () => (await hashes()) === 1, () => "the same HashKV on every member");

      // down (kill -9) while thousands more are written: restarted, it catches up by another snapshot
      await lagging.member!.kill();
      await putMany(ep(leader), "u/", 6000);
      await start(lagging);
      await waitUntil(
        async () => (await ctl(ep(lagging), "get", "u/5999", "--consistency=s", "--print-value-only")) === "5999\n",
        () => "the restarted member to catch up",
        30_000,
      );
      assertMatch(lagging.member!.log(), /"msg":"applied snapshot"/);
      await waitUntil(async () => (await hashes()) === 1, () => "the same HashKV on every member");
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name:
    "cluster: a member down for less than --snapshot-count entries catches up from the leader's log, not a snapshot",
  ...opts,
  fn: async () => {
    const { nodes, start, up } = await threeNodes(["--snapshot-count=6000"]);
    try {
      const { leader, followers: [down] } = await up();
      await putMany(ep(leader), "a/", 500);
      await down.member!.kill();
      // the leader snapshots while the member is more than etcd's 5000 entries behind: etcd would compact them away
      await putMany(ep(leader), "b/", 6000);
      assertMatch(leader.member!.log(), /"msg":"keeping raft log entries for a member behind the snapshot"/);
      await start(down);
      await waitUntil(
        async () => (await ctl(ep(down), "get", "b/5999", "--consistency=s", "--print-value-only")) === "5999\n",
        () => "the restarted member to catch up",
      );
      assert(!down.member!.log().includes("database snapshot"), down.member!.log());
      assert(!leader.member!.log().includes('"msg":"sending database snapshot"'));
      // the others published their names and client URLs once, before it went down: it knows them from its replay
      await assertAllStarted(nodes, down);
      const texts = await Promise.all(nodes.map((n) => ctl(ep(n), "endpoint", "hashkv", "-w", "json")));
      assertEquals(new Set(texts.map((t) => /"hash":(\d+)/.exec(t)![1])).size, 1, texts.join("\n"));
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "cluster: a restarting member's restore gives way to its leader's snapshot, and goes on when a transfer fails",
  ...opts,
  fn: async () => {
    const dir = await tempDir();
    const hold = (n: Node) => `${dir}/${n.name}.hold`, refuse = (n: Node) => `${dir}/${n.name}.refuse`;
    // armed by creating the files: the restore held before it reads the backend; every snapshot received refused
    const env = (n: Node) => ({
      DETCD_FAILPOINTS: [
        `beforeLocalRestore=wait-while-file:${hold(n)}`,
        `beforeSnapshotSave=error-while-file:${refuse(n)}`,
      ].join(";"),
    });
    const { nodes, start, args, up } = await threeNodes(["--snapshot-count=1000"], env);
    const arm = (path: string) => Deno.writeFile(path, new Uint8Array());
    const hashes = async () => {
      const texts = await Promise.all(nodes.map((n) => ctl(ep(n), "endpoint", "hashkv", "-w", "json")));
      return new Set(texts.map((t) => /"hash":(\d+)/.exec(t)![1])).size;
    };
    try {
      const { leader, followers: [lagging] } = await up();
      await putMany(ep(leader), "a/", 1500);

      // down while the leader compacts its log past it, restarted with its restore held: only the leader's snapshot
      // can make it ready, and does, the restore abandoned
      await lagging.member!.kill();
      await putMany(ep(leader), "b/", 6000);
      await arm(hold(lagging));
      await start(lagging);
      assertMatch(lagging.member!.log(), /"msg":"skipped restoring the backend: a leader's snapshot replaces it"/);
      assertMatch(lagging.member!.log(), /"msg":"applied snapshot"/);
      assertEquals(await ctl(ep(lagging), "get", "b/5999", "--consistency=s", "--print-value-only"), "5999\n");
      await waitUntil(async () => (await hashes()) === 1, () => "the same HashKV on every member");
      await Deno.remove(hold(lagging));

      // again, every snapshot refused: each transfer that fails lets the restore go on, which finishes once the hold
      // is gone; the member then installs the first snapshot it accepts
      await lagging.member!.kill();
      await putMany(ep(leader), "c/", 6000);
      await arm(hold(lagging));
      await arm(refuse(lagging));
      lagging.member = await startMember({
        dataDir: lagging.dataDir,
        clientPort: lagging.client,
        args: args(lagging),
        env: env(lagging),
        noWait: true,
      });
      await waitUntil(
        () => lagging.member!.log().includes('"msg":"failed to save incoming database snapshot"'),
        () => "a snapshot refused",
      );
      assert(!lagging.member.log().includes('"msg":"restored the store from the backend"'), "held");
      await Deno.remove(hold(lagging));
      await waitUntil(
        () => lagging.member!.log().includes('"msg":"restored the store from the backend"'),
        () => "the restore to finish",
      );
      await Deno.remove(refuse(lagging));
      await waitUntil(
        async () => (await ctl(ep(lagging), "get", "c/5999", "--consistency=s", "--print-value-only")) === "5999\n",
        () => "the restarted member to catch up",
        30_000,
      );
      assert(!lagging.member.log().includes("skipped restoring the backend"));
      assertMatch(lagging.member.log(), /"msg":"applied snapshot"/);
      await waitUntil(async () => (await hashes()) === 1, () => "the same HashKV on every member");
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "membership: member add (learner too), update, promote and remove with etcd's answers; a removed member stops",
  ...opts,
  fn: async () => {
    const { nodes, start } = await threeNodes();
    try {
      await Promise.all(nodes.map(start));
      const [a, b, c] = nodes;
      const spare = [await freePort(), await freePort()];
      // --strict-reconfig-check: the peers must have been reachable for etcd's health interval (5 s) first
      let added = "";
      await waitUntil(
        async () => {
          const r = await etcdctl(ep(a), ["member", "add", "n4", `--peer-urls=http://127.0.0.1:${spare[0]}`]);
          if (r.code !== 0 && !r.stderr.includes("etcdserver: unhealthy cluster")) throw new Error(r.stderr);
          added = r.stdout;
          return r.code === 0;
        },
        () => "member add to be accepted",
        30_000,
      );
      const id4 = /^Member +([0-9a-f]+) added to cluster +[0-9a-f]+\n/.exec(added)![1];
      assertMatch(
        added,
        new RegExp(`ETCD_NAME="n4"\nETCD_INITIAL_CLUSTER=".*n4=http://127\\.0\\.0\\.1:${spare[0]}.*"\n`),
      );
      assertMatch(added, /ETCD_INITIAL_CLUSTER_STATE="existing"\n$/);
      // every member applied it: an unstarted member, no name, no client URLs
      for (const n of nodes) {
        assertMatch(
          await ctl(ep(n), "member", "list"),
          new RegExp(`${id4}, unstarted, , http://127\\.0\\.0\\.1:${spare[0]}, , false`),
        );
      }
      const refused = async (args: string[], message: string) => {
        const r = await etcdctl(ep(b), args);
        assertEquals([r.code, r.stderr.trim().split("\n").pop()], [1, `Error: ${message}`]);
      };
      // a voter that has not started breaks the health check, for a learner's add too (etcd 3.4's mayAddMember)
      await refused(["member", "add", "n6", "--peer-urls=http://127.0.0.1:1"], "etcdserver: unhealthy cluster");
      await refused(
        ["member", "add", "n6", "--learner", "--peer-urls=http://127.0.0.1:1"],
        "etcdserver: unhealthy cluster",
      );
      assertMatch(await ctl(ep(a), "member", "remove", id4), /removed/);
      await refused(
        // another URL too: the same URLs within the same second would make the same ID (refused as existing first)
        ["member", "add", "dup", "--learner", `--peer-urls=http://127.0.0.1:${a.peer},http://127.0.0.1:2`],
        "etcdserver: Peer URLs already exists",
      );
      await refused(["member", "remove", "1234"], "etcdserver: member not found");
      await refused(["member", "update", "1234", "--peer-urls=http://127.0.0.1:1"], "etcdserver: member not found");
      // a learner: one at most; it is promoted only once it has caught up (asked on a follower, answered by the leader)
      const learner = await ctl(ep(b), "member", "add", "n5", "--learner", `--peer-urls=http://127.0.0.1:${spare[1]}`);
      const id5 = /^Member +([0-9a-f]+) added/.exec(learner)![1];
      assertMatch(
        await ctl(ep(c), "member", "list"),
        new RegExp(`${id5}, unstarted, , http://127\\.0\\.0\\.1:${spare[1]}, , true`),
      );
      await refused(
        ["member", "add", "n6", "--learner", "--peer-urls=http://127.0.0.1:1"],
        "etcdserver: too many learner members in cluster",
      );
      for (const n of nodes) {
        const r = await etcdctl(ep(n), ["member", "promote", id5]);
        assertMatch(r.stderr, /Error: etcdserver: can only promote a learner member which is in sync with leader\n$/);
      }
      // removed members' IDs are gone for good
      assertEquals(
        await ctl(ep(c), "member", "remove", id5),
        `Member ${id5.padStart(16)} removed from cluster ${await clusterId(a)}\n`,
      );
      await refused(["member", "remove", id5], "etcdserver: member not found");
      await refused(["member", "remove", id4], "etcdserver: member not found");

      // update: every member takes the new peer URL (the same listener, by another name) and replicates through it
      const cid = (await status(c)).id;
      assertEquals(
        await ctl(ep(a), "member", "update", cid, `--peer-urls=http://localhost:${c.peer}`),
        `Member ${cid.padStart(16)} updated in cluster ${await clusterId(a)}\n`,
      );
      for (const n of nodes) {
        assertMatch(
          await ctl(ep(n), "member", "list"),
          new RegExp(`${cid}, started, n3, http://localhost:${c.peer}, `),
        );
      }
      await ctl(ep(a), "put", "through", "update");
      await waitUntil(
        async () => (await ctl(ep(c), "get", "through", "--consistency=s", "--print-value-only")) === "update\n",
        () => "the updated member to replicate",
      );

      // remove a started member: it applies its own removal, says so and stops; the other two go on
      assertMatch(await ctl(ep(a), "member", "remove", cid), /removed/);
      assertEquals(await c.member!.child.status.then((s) => s.code), 0);
      assertMatch(c.member!.log(), /"msg":"data-dir used by this member must be removed"/);
      c.member = undefined;
      // when it led, a write forwarded to it meanwhile is lost with it (as in etcd): the client retries
      await waitUntil(
        async () => (await etcdctl(ep(b), ["put", "two", "left"])).code === 0,
        () => "a write once two members are left",
        30_000,
      );
      const list = await ctl(ep(a), "member", "list");
      assertEquals(list.trim().split("\n").length, 2, list);
      // the others count it as a peer no more
      const aid = (await status(a)).id;
      await waitUntil(
        async () =>
          (await (await fetch(`http://${ep(a)}/metrics`)).text()).includes(
            `etcd_network_active_peers{Local="${aid}",Remote="${cid}"} 0`,
          ),
        () => "the removed member to be no active peer",
      );
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

/** etcdctl prints member IDs with Go's %16x: padded with spaces. */
async function clusterId(n: Node): Promise<string> {
  const text = await ctl(ep(n), "endpoint", "status", "-w", "json");
  return BigInt(/"cluster_id":(\d+)/.exec(text)![1]).toString(16).padStart(16);
}

Deno.test({
  name: "membership: added members start with --initial-cluster-state existing, a learner is promoted once caught up",
  ...opts,
  fn: async () => {
    const { nodes, start } = await threeNodes();
    const joiners: Node[] = [];
    try {
      await Promise.all(nodes.map(start));
      for (let i = 0; i < 30; i++) await ctl(ep(nodes[i % 3]), "put", `k${i}`, `v${i}`);
      const join = async (name: string, learner: boolean): Promise<{ node: Node; id: string }> => {
        const node: Node = { name, client: await freePort(), peer: await freePort(), dataDir: `${await tempDir()}/j` };
        const args = [
          "member",
          "add",
          name,
          `--peer-urls=http://127.0.0.1:${node.peer}`,
          ...(learner ? ["--learner"] : []),
        ];
        let out = "";
        await waitUntil(
          async () => {
            const r = await etcdctl(ep(nodes[0]), args);
            if (r.code !== 0 && !r.stderr.includes("etcdserver: unhealthy cluster")) throw new Error(r.stderr);
            out = r.stdout;
            return r.code === 0;
          },
          () => `member add ${name}`,
          30_000,
        );
        const cluster = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(out)![1];
        joiners.push(node);
        node.member = await startMember({
          dataDir: node.dataDir,
          clientPort: node.client,
          args: [...flags(node, cluster), "--initial-cluster-state=existing"],
        });
        return { node, id: /^Member +([0-9a-f]+) added/.exec(out)![1] };
      };
      // a voter joins: it learns the membership and the data from the leader's log, then serves like the others
      const { node: n4, id: id4 } = await join("n4", false);
      assertEquals(await ctl(ep(n4), "get", "k29", "--print-value-only"), "v29\n");
      assertMatch(
        await ctl(ep(n4), "member", "list"),
        new RegExp(`${id4}, started, n4, http://127\\.0\\.0\\.1:${n4.peer}, http://${ep(n4)}, false`),
      );
      assertEquals(await ctl(ep(n4), "put", "from", "n4"), "OK\n");

      // a learner joins: it serves serializable reads only until it is promoted
      const { node: n5, id: id5 } = await join("n5", true);
      await waitUntil(
        async () => (await ctl(ep(n5), "get", "from", "--consistency=s", "--print-value-only")) === "n4\n",
        () => "the learner to catch up",
      );
      const put = await etcdctl(ep(n5), ["--command-timeout=1s", "put", "on", "learner"]);
      assertMatch(put.stderr, /etcdserver: rpc not supported for learner/);
      assertMatch(await ctl(ep(n5), "endpoint", "status"), new RegExp(`${id5}, 3\\.4\\.23, [^,]+, false, true, `));
      // asked on a follower, the leader (which knows the learner is in sync) promotes it
      const follower = nodes[(await Promise.all(nodes.map(status))).findIndex((s) => s.id !== s.leader)];
      assertEquals(
        await ctl(ep(follower), "member", "promote", id5),
        `Member ${id5.padStart(16)} promoted in cluster ${await clusterId(follower)}\n`,
      );
      await waitUntil(
        async () => (await etcdctl(ep(n5), ["put", "on", "voter"])).code === 0,
        () => "the promoted member to take writes",
      );
      assertMatch(await ctl(ep(nodes[0]), "member", "list"), new RegExp(`${id5}, started, n5, .*, false`));
      await assertOneHashKV([...nodes, n4, n5].map(ep));

      // a member that was never added cannot join
      const stray: Node = {
        name: "stray",
        client: await freePort(),
        peer: await freePort(),
        dataDir: `${await tempDir()}/s`,
      };
      const cluster = [...nodes, n4, n5, stray].map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(",");
      const refused = await startMember({
        dataDir: stray.dataDir,
        clientPort: stray.client,
        args: [...flags(stray, cluster), "--initial-cluster-state=existing"],
        expectExit: true,
      });
      assertEquals(await refused.stop(), 1);
      assertMatch(refused.log(), /error validating peerURLs [0-9a-f]+: member count is unequal/);
    } finally {
      await Promise.all([...nodes, ...joiners].map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "a member restarted without a quorum keeps publishing itself, and serves once a peer is back",
  ...opts,
  fn: async () => {
    const { nodes, start, args } = await threeNodes();
    const [a, b] = nodes;
    try {
      await Promise.all(nodes.map(start));
      await ctl(ep(a), "put", "k", "v");
      await Promise.all(nodes.map(async (n) => {
        await n.member!.stop();
        n.member = undefined;
      }));
      // alone it has no leader: its publish gives up after the request timeout (7 s) and is made again, as etcd's
      a.member = await startMember({ dataDir: a.dataDir, clientPort: a.client, args: args(a), noWait: true });
      // so does c, stopped meanwhile (systemctl stop): it exits at once and cleanly, not when a quorum is back
      const c = nodes[2];
      c.member = await startMember({ dataDir: c.dataDir, clientPort: c.client, args: args(c), noWait: true });
      await waitUntil(
        () => c.member!.log().includes('"msg":"starting etcd server"'),
        () => `c to start:\n${c.member!.log()}`,
      );
      const t0 = Date.now();
      const code = await Promise.race([
        c.member.stop(),
        new Promise<string>((r) => setTimeout(() => r("hung"), 10_000)),
      ]);
      if (code === "hung") await c.member.kill();
      assertEquals(code, 0, c.member.log());
      assert(Date.now() - t0 < 5000, `stopped after ${Date.now() - t0} ms`);
      assertMatch(c.member.log(), /"msg":"received signal; shutting down"/);
      assert(!c.member.log().includes("ready to serve client requests"));
      c.member = undefined;
      await waitUntil(
        () => a.member!.log().includes('"msg":"failed to publish local member to cluster through raft"'),
        () => `a failed publish, retried:\n${a.member!.log()}`,
        30_000,
      );
      await start(b);
      await waitUntil(
        () => a.member!.log().includes("ready to serve client requests"),
        () => `a to get ready:\n${a.member!.log()}`,
      );
      assertEquals(await ctl(ep(a), "get", "k", "--print-value-only"), "v\n");
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "--force-new-cluster on a survivor's data: a writable one-member cluster with every key",
  ...opts,
  fn: async () => {
    const { nodes, start } = await threeNodes(["--snapshot-count=50"]);
    const [n1] = nodes;
    // the flags it started with: what an operator restarts it with
    const cluster = nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(",");
    try {
      await Promise.all(nodes.map(start));
      // entries before and after a snapshot: the survivor's membership comes from both
      for (let i = 0; i < 120; i++) await ctl(ep(nodes[i % 3]), "put", `k${i}`, `v${i}`);
      const hash = /"hash":(\d+)/.exec(await ctl(ep(n1), "endpoint", "hashkv", "-w", "json"))![1];
      const id = (await status(n1)).id;
      await Promise.all(nodes.map((n) => n.member!.kill()));
      n1.member = await startMember({
        dataDir: n1.dataDir,
        clientPort: n1.client,
        args: [...flags(n1, cluster), "--force-new-cluster"],
      });
      assertMatch(n1.member.log(), /"msg":"forcing restart member"/);
      assertEquals(
        await ctl(ep(n1), "member", "list"),
        `${id}, started, n1, http://127.0.0.1:${n1.peer}, http://${ep(n1)}, false\n`,
      );
      assertEquals((await status(n1)).leader, id);
      assertEquals(/"hash":(\d+)/.exec(await ctl(ep(n1), "endpoint", "hashkv", "-w", "json"))![1], hash);
      assertEquals(await ctl(ep(n1), "get", "k119", "--print-value-only"), "v119\n");
      assertEquals(await ctl(ep(n1), "put", "alone", "yes"), "OK\n");
      // and it stays so across a plain restart
      await n1.member.stop();
      n1.member = await startMember({
        dataDir: n1.dataDir,
        clientPort: n1.client,
        args: flags(n1, cluster),
      });
      assertEquals((await ctl(ep(n1), "member", "list")).trim().split("\n").length, 1);
      assertEquals(await ctl(ep(n1), "get", "alone", "--print-value-only"), "yes\n");
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "corruption checks: a member whose data differs is refused at start, and the leader's check raises CORRUPT",
  ...opts,
  fn: async () => {
    const { nodes, start, args, up } = await threeNodes(["--experimental-corrupt-check-time=1s"]);
    try {
      const { followers: [victim] } = await up();
      for (let i = 0; i < 10; i++) await ctl(ep(nodes[i % 3]), "put", `k${i}`, `v${i}`);
      // as etcd's own test does: the member is stopped and a value changed in its backend behind its back
      await victim.member!.stop();
      const be = await Backend.openDataDir(victim.dataDir);
      let changed = 0;
      be.forEach(BUCKET.key, (k, v) => {
        const kv = decodeKeyValue(v);
        if (new TextDecoder().decode(kv.key) !== "k3") return;
        kv.value = new TextEncoder().encode("bit rot");
        be.put(BUCKET.key, k, storedValue(kv));
        changed++;
        return false;
      });
      await be.close();
      assertEquals(changed, 1);

      const refused = await startMember({
        dataDir: victim.dataDir,
        clientPort: victim.client,
        args: [...args(victim), "--experimental-initial-corrupt-check"],
        expectExit: true,
      });
      assertEquals(await refused.stop(), 1);
      assertMatch(refused.log(), /"msg":"found different hash values from remote peer"/);
      assertMatch(refused.log(), /[0-9a-f]+ found data inconsistency with peers/);

      // started without the initial check, the leader's periodic check finds it and the cluster refuses writes
      await start(victim);
      const victimId = (await status(victim)).id;
      await waitUntil(
        async () =>
          (await ctl(ep(nodes[0]), "alarm", "list")).includes(`memberID:${BigInt(`0x${victimId}`)} alarm:CORRUPT`),
        () => "the CORRUPT alarm",
      );
      const put = await etcdctl(ep(nodes[0]), ["put", "after", "corruption"]);
      assertMatch(put.stderr, /etcdserver: corrupt cluster/);
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name:
    "a member left without a leader: serializable reads only, and watches that require a leader end (etcd's output)",
  ...opts,
  fn: async () => {
    const { nodes, start } = await threeNodes();
    try {
      await Promise.all(nodes.map(start));
      const [alone, ...others] = nodes;
      await ctl(ep(alone), "put", "x", "y");
      // etcdctl watches WithRequireLeader
      const watcher = spawnEtcdctl(ep(alone), ["watch", "foo"]);
      await watchersAre(ep(alone), 1);
      await ctl(ep(alone), "put", "foo", "1");
      await Promise.all(others.map((n) => n.member!.kill()));
      // etcd ends such streams after three election timeouts without a leader
      assertEquals(await watcher.exited, 5);
      assertEquals(watcher.stdout(), "PUT\nfoo\n1\n");
      assertMatch(
        watcher.stderr(),
        /watch was canceled \(etcdserver: no leader\)\nError: watch is canceled by the server\n$/,
      );
      // a new one is refused at once
      const again = await etcdctl(ep(alone), ["watch", "bar"]);
      assertEquals(again.code, 5);
      assertMatch(again.stderr, /watch was canceled \(etcdserver: no leader\)\n/);
      assertEquals(await ctl(ep(alone), "get", "x", "--consistency=s", "--print-value-only"), "y\n");
      assertMatch(await ctl(ep(alone), "endpoint", "status"), /, etcdserver: no leader\n$/);
      const linearizable = await etcdctl(ep(alone), ["--command-timeout=2s", "get", "x"]);
      assertMatch(linearizable.stderr, /context deadline exceeded/);
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "lease checkpoints: a new leader counts a lease down from the checkpointed remaining TTL, not its full TTL",
  ...opts,
  fn: async () => {
    // etcd's LeaseCheckpointInterval (5 min, no flag in 3.4) shortened as etcd's integration tests do
    const { nodes, up } = await threeNodes(["--experimental-enable-lease-checkpoint"], {
      DETCD_LEASE_CHECKPOINT_INTERVAL: "1s",
    });
    try {
      const { leader, followers: [survivor] } = await up();
      const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep(leader), "lease", "grant", "20"))![1];
      const remaining = async () =>
        Number(/remaining\((-?\d+)s\)/.exec(await ctl(ep(survivor), "lease", "timetolive", lease))![1]);
      // let the leader count down and checkpoint a few times
      await waitUntil(async () => (await remaining()) <= 14, () => "the lease to count down", 15_000);
      await leader.member!.kill();
      await waitUntil(
        async () => (await etcdctl(ep(survivor), ["--command-timeout=2s", "put", "after", "kill"])).code === 0,
        () => "a new leader",
        30_000,
      );
      // without checkpoints the new leader would start from 20 s (plus its election-timeout extension)
      const after = await remaining();
      assertEquals(after <= 17, true, `remaining ${after}s after the failover`);
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "an isolated leader commits nothing and serves no linearizable read; the others elect a leader and go on",
  ...opts,
  fn: async () => {
    const { nodes, up } = await threeNodesWithLinks();
    try {
      const { leaderId, leader: old, followers: others } = await up();
      await ctl(ep(nodes[0]), "put", "k", "before");
      await Deno.writeTextFile(links(old), "drop-to *\ndrop-from *\n");
      // the others elect a leader among themselves and commit
      await waitUntil(async () => {
        const s = await etcdctl(ep(others[0]), ["endpoint", "status", "-w", "json", "--command-timeout=1s"]);
        const leader = /"leader":(\d+)/.exec(s.stdout)?.[1];
        return s.code === 0 && leader !== undefined && BigInt(leader).toString(16) !== leaderId;
      }, () => "a new leader among the others");
      await ctl(ep(others[0]), "put", "k", "after");
      // the isolated one: no write, no linearizable read; a serializable read shows its stale state
      const put = await etcdctl(ep(old), ["put", "k", "lost", "--command-timeout=3s"]);
      assertEquals(put.code !== 0, true, put.stdout);
      const read = await etcdctl(ep(old), ["get", "k", "--print-value-only", "--command-timeout=3s"]);
      assertEquals([read.code !== 0, read.stdout.includes("before")], [true, false], read.stdout);
      assertEquals(await ctl(ep(old), "get", "k", "--print-value-only", "--consistency=s"), "before\n");
      // healed: it follows the new leader and has what was committed without it, not its own attempt
      await Deno.writeTextFile(links(old), "");
      await waitUntil(
        async () =>
          (await etcdctl(ep(old), ["get", "k", "--print-value-only", "--command-timeout=1s"])).stdout === "after\n",
        () => "the healed member to read the new value",
      );
      for (const n of nodes) assertEquals(await ctl(ep(n), "get", "k", "--print-value-only"), "after\n");
    } finally {
      for (const n of nodes) await n.member?.kill();
    }
  },
});

Deno.test({
  name: "cluster: a write that waits for a leader times out 7 s after it came, not 7 s after a leader was found",
  ...opts,
  fn: async () => {
    // pre-vote: the member cut off keeps its term, so it follows the leader as soon as it hears from it again
    const { nodes, up } = await threeNodesWithLinks(["--pre-vote"]);
    try {
      const { followers: [held] } = await up();
      await Deno.writeTextFile(links(held), "drop-to *\ndrop-from *\n");
      await waitUntil(
        async () =>
          (await etcdctl(ep(held), ["endpoint", "status", "--command-timeout=1s"])).stdout.includes("no leader"),
        () => "the member cut off to lose its leader",
      );
      const t0 = performance.now();
      const put = spawnEtcdctl(ep(held), ["--command-timeout=30s", "put", "held", "x"]);
      // the scenario itself, not a wait for a condition: the put waits for a leader for 5 s of its 7, then the member
      // hears the leader again but what it sends is lost, its proposal with it
      await new Promise((r) => setTimeout(r, 5000));
      await Deno.writeTextFile(links(held), "drop-to *\n");
      assertEquals(await put.exited, 1);
      const took = performance.now() - t0;
      assertMatch(put.stderr(), /Error: etcdserver: request timed out\n/);
      // 7 s from its arrival (the wait for the leader counted in), where it took 5 + 7 s before
      assert(took >= 6500 && took < 10_500, `answered after ${Math.round(took)} ms`);
    } finally {
      for (const n of nodes) await n.member?.kill();
    }
  },
});

/**
 * Three members on which raft alone elects no one within 3 s of the leader's last heartbeat (--election-timeout=3000),
 * each with a link-fault file: `up` starts them (the member IDs, the leader), `linkRule` sets a member's rule and waits
 * until it is read.
 */
async function slowElectionCluster() {
  const { nodes, up } = await threeNodesWithLinks(["--election-timeout=3000"]);
  const linkRule = async (n: Node, rule: string) => {
    await Deno.writeTextFile(links(n), `${rule}\n`);
    await waitUntil(() => n.member!.log().includes('"msg":"link faults changed"'), () => "the rule read");
  };
  return { nodes, up, linkRule };
}

Deno.test({
  name: "cluster: a killed leader is replaced well within the election timeout (its peer port refuses connections)",
  ...opts,
  fn: async () => {
    const { nodes, up, linkRule } = await slowElectionCluster();
    try {
      const { leaderId, leader, followers: survivors } = await up();
      const [held] = survivors;
      // a put forwarded to the leader is lost on the way (the link drops it): still waiting when the leader dies
      await linkRule(held, `drop-to ${leaderId}`);
      const lost = spawnEtcdctl(ep(held), ["--command-timeout=20s", "put", "lost", "x"]);
      await waitUntil(
        async () =>
          (await (await fetch(`http://${ep(held)}/metrics`)).text()).includes("etcd_server_proposals_pending 1"),
        () => "the put to be proposed",
      );
      await leader.member!.kill();
      // answered once the new leader's first entry is applied, not at the request timeout (11 s here)
      assertEquals(await lost.exited, 1);
      assertMatch(lost.stderr(), /Error: etcdserver: request timed out, possibly due to previous leader failure/);
      const put = await etcdctl(ep(held), ["--command-timeout=2s", "put", "after", "kill"]);
      assertEquals([put.code, put.stdout, put.stderr], [0, "OK\n", ""]);
      const now = await Promise.all(survivors.map(status));
      assertEquals(now[0].leader, now[1].leader);
      assert(now.some((s) => s.id === now[0].leader), JSON.stringify(now));
      for (const n of survivors) {
        assertMatch(n.member!.log(), /leader's peer URL refuses connections; forgetting it to elect a new one at once/);
      }
      // etcd's --initial-election-tick-advance (on by default): the first election came two ticks after the peers met
      assert(
        nodes.some((n) =>
          n.member!.log().includes('"msg":"initialized peer connections; fast-forwarding election ticks"')
        ),
      );
    } finally {
      for (const n of nodes) await n.member?.kill();
    }
  },
});

Deno.test({
  name: "cluster: after a leader's kill, the first survivor to campaign has the shorter log; the next one wins at once",
  ...opts,
  fn: async () => {
    const { nodes, up, linkRule } = await slowElectionCluster();
    try {
      const { ids, leaderId, leader, followers } = await up();
      // the survivors campaign in the order of their member IDs
      const idOf = (n: Node) => BigInt(`0x${ids[nodes.indexOf(n)].id}`);
      const [first, second] = followers.sort((a, b) => (idOf(a) < idOf(b) ? -1 : 1));
      // the first misses the last writes (the leader's messages to it dropped, for less than an election timeout)
      await linkRule(first, `drop-from ${leaderId}`);
      for (let i = 0; i < 3; i++) await ctl(ep(leader), "put", `behind${i}`, `${i}`);
      await leader.member!.kill();
      const put = await etcdctl(ep(second), ["--command-timeout=2s", "put", "after", "kill"]);
      assertEquals([put.code, put.stdout, put.stderr], [0, "OK\n", ""]);
      assertEquals((await status(second)).leader, ids[nodes.indexOf(second)].id);
      await waitUntil(
        async () => (await ctl(ep(first), "get", "behind2", "--consistency=s", "--print-value-only")) === "2\n",
        () => "the first survivor to catch up",
      );
    } finally {
      for (const n of nodes) await n.member?.kill();
    }
  },
});

Deno.test({
  name: "an isolated leader answers no keep-alive: its renewal would be unknown to the leader elected meanwhile",
  ...opts,
  fn: async () => {
    // a long election timeout: the isolated leader believes it leads for 5-10 s, the window etcd 3.4 renewed in
    const { nodes, up } = await threeNodesWithLinks(["--election-timeout=5000"]);
    try {
      const { leaderId, leader: old } = await up();
      const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep(old), "lease", "grant", "60"))![1];
      assertMatch(await ctl(ep(old), "lease", "keep-alive", "--once", lease), /keepalived with TTL\(60\)/);
      await Deno.writeTextFile(links(old), "drop-to *\ndrop-from *\n");
      // cut off once a linearizable read no longer completes
      await waitUntil(
        async () => (await etcdctl(ep(old), ["get", "k", "--command-timeout=1s"])).code !== 0,
        () => "the leader to be cut off",
      );
      assertEquals((await status(old)).leader, leaderId, "it still believes it leads");
      const kept = await etcdctl(ep(old), ["lease", "keep-alive", "--once", lease, "--command-timeout=2s"]);
      assertEquals([kept.code !== 0, kept.stdout.includes("keepalived")], [true, false], kept.stdout);
    } finally {
      for (const n of nodes) await n.member?.kill();
    }
  },
});

Deno.test({
  name: "a peer's request to a member that is still starting waits for its server, as etcd holds it, not a 503",
  ...opts,
  fn: async () => {
    const node: Node = { name: "n1", client: await freePort(), peer: await freePort(), dataDir: "" };
    node.dataDir = `${await tempDir()}/n1.etcd`;
    const fakePeer = await freePort();
    let asked = false;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => release = resolve);
    // the running cluster's member that `member add` went through: its GET /members answers once released, and the
    // joining member creates its server only then
    const fake = Deno.serve({ hostname: "127.0.0.1", port: fakePeer, onListen: () => {} }, async (req) => {
      if (new URL(req.url).pathname !== "/members") return new Response("404 page not found\n", { status: 404 });
      asked = true;
      await released;
      const members = [
        { id: 1, name: "fake", peerURLs: [`http://127.0.0.1:${fakePeer}`], clientURLs: [] },
        { id: 2, name: "", peerURLs: [`http://127.0.0.1:${node.peer}`], clientURLs: [] },
      ];
      return Response.json(members, { headers: { "x-etcd-cluster-id": "c1" } });
    });
    const cluster = `fake=http://127.0.0.1:${fakePeer},n1=http://127.0.0.1:${node.peer}`;
    node.member = await startMember({
      dataDir: node.dataDir,
      clientPort: node.client,
      args: [...flags(node, cluster), "--initial-cluster-state=existing"],
      noWait: true,
    });
    try {
      // its peer listener is bound before it asks
      await waitUntil(() => asked, () => `the joining member to ask for the members:\n${node.member!.log()}`);
      const probe = fetch(`http://127.0.0.1:${node.peer}/raft/probing`);
      const early = await Promise.race([
        probe.then((res) => res.status),
        new Promise((resolve) => setTimeout(() => resolve("waiting"), 300)),
      ]);
      assertEquals(early, "waiting");
      release();
      const res = await probe;
      assertEquals(res.status, 200);
      await res.body?.cancel();
    } finally {
      release();
      await node.member.kill();
      await fake.shutdown();
    }
  },
});

Deno.test({
  name:
    "restart: a member whose raft log starts after what its backend applied leads, and sends one behind it a snapshot",
  ...opts,
  fn: async () => {
    // --snapshot-count above the 5000 entries a restart keeps before what its backend applied: a snapshot file, then
    // more than 5000 entries applied after it, and no second snapshot
    const { nodes, start, up } = await threeNodes(["--snapshot-count", "6000"]);
    try {
      const { leader, followers: [a, c] } = await up();
      await c.member!.stop();
      await putMany(ep(leader), "k", 11_300);
      await a.member!.stop();
      await start(a);
      const restart = JSON.parse(/.*"msg":"restarting local member".*/.exec(a.member!.log())![0]);
      assert(restart["snapshot-index"] > 6000, JSON.stringify(restart));
      const first = restart["raft-log-first-index"];
      assert(first > restart["snapshot-index"] + 1, JSON.stringify(restart));
      // it leads; the member down since before the first put is behind its log's start: a sends it a snapshot
      // the two members up elect a leader (the one left alone stepped down); etcdctl stops at the first endpoint that
      // leads and fails on one that is down, so only the two up are given
      let now = await status(a);
      await waitUntil(async () => (now = await status(a)).leader !== "0", () => "a leader among the two up");
      const target = now.id;
      if (now.leader !== target) {
        assertMatch(await ctl([leader, a].map(ep).join(","), "move-leader", target), /Leadership transferred/);
      }
      assertEquals((await status(a)).leader, target);
      await start(c);
      await waitUntil(
        async () => (await ctl(ep(c), "get", "k11299", "--consistency=s", "--print-value-only")) === "11299\n",
        () => "the member behind to catch up",
      );
      assertMatch(
        c.member!.log(),
        new RegExp(`"msg":"received and saved database snapshot","remote-snapshot-sender-id":"${target}"`),
      );
      assertEquals(await ctl(ep(c), "get", "k0", "--consistency=s", "--print-value-only"), "0\n");
      await assertAllStarted(nodes, c);
      await assertOneHashKV(nodes.map(ep));
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});

Deno.test({
  name: "backup: a member's etcdctl snapshot, restored by etcdctl into three data dirs, starts a three-member cluster",
  ...opts,
  fn: async () => {
    const single = await startMember();
    const dir = await tempDir();
    try {
      for (let i = 0; i < 200; i++) await ctl(single.endpoint, "put", `k${i}`, `v${i}`);
      await ctl(single.endpoint, "snapshot", "save", `${dir}/backup.db`);
    } finally {
      await single.stop();
    }
    // etcd's disaster recovery: each member's data dir restored from the one backup, the new cluster named in full
    const { nodes, up } = await threeNodes();
    const cluster = nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(",");
    for (const n of nodes) {
      await ctl(
        "127.0.0.1:1",
        "snapshot",
        "restore",
        `${dir}/backup.db`,
        `--name=${n.name}`,
        `--initial-cluster=${cluster}`,
        "--initial-cluster-token=cluster-test",
        `--initial-advertise-peer-urls=http://127.0.0.1:${n.peer}`,
        `--data-dir=${n.dataDir}`,
      );
    }
    try {
      const { leader } = await up();
      await assertAllStarted(nodes, nodes[0]);
      assertEquals(await ctl(ep(leader), "put", "after", "restore"), "OK\n");
      for (const n of nodes) {
        await waitUntil(
          async () => (await ctl(ep(n), "get", "after", "--consistency=s", "--print-value-only")) === "restore\n",
          () => `${n.name} to apply the put after the restore`,
        );
        assertEquals(await ctl(ep(n), "get", "k199", "--consistency=s", "--print-value-only"), "v199\n");
      }
      await assertOneHashKV(nodes.map(ep));
    } finally {
      await Promise.all(nodes.map((n) => n.member?.stop()));
    }
  },
});
