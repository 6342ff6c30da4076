// Cluster membership through etcdctl 3.4, differentially: one session against three of Debian's etcd members, then the
// same against three detcd members on the same ports with the same flags (so the same member and cluster IDs), and
// the same answers: member list, add (voting and learner), remove, update, promote, move-leader, and every refusal on
// the way (an unstarted member making the cluster unhealthy, even for a learner; a peer URL in use; an unknown or
// removed ID; a learner not in sync; a voter promoted; bad URLs; a learner or an unknown member to lead; no leader
// among the endpoints).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { clusterFlags, etcdctl, freePort, startMember, tempDir, waitUntil } from "./harness.ts";
import {
  ETCDCTL_SESSION,
  GATEWAY_SESSION,
  observe as observeOne,
  opts,
  post,
  startReferenceMember,
} from "./reference.ts";

interface Ports {
  clients: number[];
  peers: number[];
  /** Peer URLs of members added in the session (never started). */
  extra: number[];
}

const TOKEN = "cluster-differential";
const peerUrl = (port: number) => `http://127.0.0.1:${port}`;

function nodes(ports: Ports, dir: string) {
  return ports.clients.map((client, i) => ({
    name: `n${i + 1}`,
    client,
    peer: ports.peers[i],
    dataDir: `${dir}/n${i + 1}.etcd`,
  }));
}

function flagsOf(ports: Ports, dir: string): string[][] {
  const ns = nodes(ports, dir);
  const cluster = ns.map((n) => `${n.name}=${peerUrl(n.peer)}`).join(",");
  return ns.map((n) => [...clusterFlags(n, cluster, TOKEN), "--initial-cluster-state=new"]);
}

/**
 * A member added in the session has an ID of the moment; the bootstrapped ones and the cluster's are the same on both.
 * etcdctl pads an ID to 16 characters in some lines: an ID with leading zeros has more spaces before it.
 */
function normalize(text: string, known: Set<string>): string {
  return text
    .replace(/( *)\b([0-9a-f]{13,16})\b/g, (m, sp: string, id: string) => known.has(id) ? m : `${sp && " "}NEW-ID`)
    .replace(/took = \S+/g, "took = T")
    .replace(/^\{"level":"warn".*\n?/gm, "") // clientv3's retry log: timestamps and client IDs
    // the members' order is by ID, and an added member's ID is the moment's
    .replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(",").sort()}"`)
    .split("\n").sort().join("\n");
}

/** The session's answers, run against the cluster whose client endpoints are `endpoints`. */
async function session(endpoints: string[], ports: Ports): Promise<unknown[]> {
  const ep = endpoints[0];
  const answers: unknown[] = [];
  const known = new Set<string>();
  const ids = new Map<string, string>(); // name -> hex ID
  const list = async () => {
    const r = await etcdctl(ep, ["member", "list"]);
    for (const line of r.stdout.trim().split("\n")) {
      const [id, , name, peer] = line.split(", ");
      ids.set(name || peer, id);
    }
    return r;
  };
  for (const line of (await list()).stdout.trim().split("\n")) known.add(line.split(", ")[0]);
  // decimal 64-bit numbers: read from the text, JSON.parse would round them
  known.add(
    BigInt(/"cluster_id":(\d+)/.exec((await etcdctl(ep, ["member", "list", "-w", "json"])).stdout)![1]).toString(16),
  );
  const observe = async (args: string[]) => {
    const r = await etcdctl(ep, args);
    answers.push({
      args: normalize(args.join(" "), known),
      code: r.code,
      stdout: normalize(r.stdout, known),
      stderr: normalize(r.stderr, known),
    });
    return r;
  };
  // --strict-reconfig-check: a member may be added once every member has been connected for 5 s
  await waitUntil(async () => {
    const r = await etcdctl(ep, ["member", "add", "n4", `--peer-urls=${peerUrl(ports.extra[0])}`]);
    if (r.code === 0) answers.push({ added: normalize(r.stdout, known) });
    return r.code === 0 || !r.stderr.includes("unhealthy cluster");
  }, () => "member add kept answering 'unhealthy cluster'");
  await observe(["member", "list"]);
  await list();
  const n4 = ids.get(peerUrl(ports.extra[0]))!;
  // n4 never starts: the cluster is not fully connected, so strict reconfiguration refuses any addition
  await observe(["member", "add", "n5", `--peer-urls=${peerUrl(ports.extra[1])}`, "--learner"]);
  await observe(["member", "remove", n4]);
  await observe(["member", "remove", n4]);
  await observe(["member", "remove", "abcdef0123456789"]);
  await observe(["member", "list", "-w", "table"]);
  await observe(["member", "add", "dup", `--peer-urls=${peerUrl(ports.peers[0])}`]);
  // URLs etcd refuses (etcdctl would refuse them first): a scheme other than http(s) or unix(s), a path, no port
  for (const url of ["ftp://127.0.0.1:1", "http://127.0.0.1:1/raft", "http://127.0.0.1"]) {
    answers.push(await post(ep, "/v3/cluster/member/add", JSON.stringify({ peerURLs: [url] })));
  }
  await waitUntil(async () => {
    const r = await etcdctl(ep, ["member", "add", "n5", `--peer-urls=${peerUrl(ports.extra[1])}`, "--learner"]);
    if (r.code === 0) answers.push({ addedLearner: normalize(r.stdout, known) });
    return r.code === 0 || !r.stderr.includes("unhealthy cluster");
  }, () => "member add --learner kept answering 'unhealthy cluster'");
  await list();
  const n5 = ids.get(peerUrl(ports.extra[1]))!;
  await observe(["member", "list"]);
  await observe(["member", "promote", n5]);
  await observe(["member", "promote", ids.get("n2")!]);
  // move-leader: etcdctl asks each endpoint's status for the leader, then the leader moves; a learner, an unknown ID
  // and a list of endpoints without the leader are refused. First n1 leads on both (the move's answer is not kept:
  // who led before differs)
  const all = `--endpoints=${endpoints.join(",")}`;
  const moved = await etcdctl(ep, [all, "move-leader", ids.get("n1")!]);
  if (moved.code !== 0) throw new Error(`move-leader to n1: ${moved.stderr}`);
  await observe([all, "move-leader", ids.get("n2")!]);
  await observe([all, "move-leader", n5]);
  await observe([all, "move-leader", "abcdef0123456789"]);
  await observe([`--endpoints=${endpoints[0]},${endpoints[2]}`, "move-leader", ids.get("n3")!]);
  await observe(["member", "update", ids.get("n2")!, `--peer-urls=${peerUrl(ports.peers[0])}`]);
  await observe(["member", "update", ids.get("n2")!, `--peer-urls=${peerUrl(ports.peers[1])}`]);
  await observe(["member", "update", "abcdef0123456789", `--peer-urls=${peerUrl(ports.extra[2])}`]);
  await observe(["member", "remove", n5]);
  await observe(["member", "list"]);
  await observe(["endpoint", "health", "--cluster"]);
  // the leader moved to n2 above; sizes, terms and indexes are the servers' own
  const status = await etcdctl(ep, ["endpoint", "status", "--cluster", "-w", "json"]);
  answers.push(status.stdout.replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":N'));
  // the single-member differential sessions, on n3, a follower: its writes go through the leader
  for (const [args, input] of ETCDCTL_SESSION) answers.push({ args, ...await observeOne(endpoints[2], args, input) });
  for (const [path, body] of GATEWAY_SESSION) answers.push({ path, ...await post(endpoints[2], path, body) });
  // an election more (a split vote, a loaded machine) moves the term and adds an entry: terms and raft indexes are
  // the cluster's history, not an answer
  return JSON.parse(
    JSON.stringify(answers).replace(
      /(\\?"(?:raft_term|raftTerm|raftIndex|raftAppliedIndex)\\?":\\?"?)\d+/g,
      (_, k: string) => `${k}0`,
    ),
  );
}

Deno.test({
  name: "cluster differential: etcdctl member add/remove/update/promote and their refusals answer as etcd's",
  ...opts,
  fn: async () => {
    const ports: Ports = { clients: [], peers: [], extra: [] };
    for (let i = 0; i < 3; i++) {
      ports.clients.push(await freePort());
      ports.peers.push(await freePort());
      ports.extra.push(await freePort());
    }
    const endpoints = ports.clients.map((p) => `127.0.0.1:${p}`);
    const healthy = () =>
      waitUntil(async () => {
        for (const e of endpoints) if ((await etcdctl(e, ["endpoint", "health"])).code !== 0) return false;
        return true;
      }, () => "the cluster did not get healthy");

    const refDir = await tempDir();
    const stops = flagsOf(ports, refDir).map((f) => startReferenceMember(f));
    let reference: unknown[];
    try {
      await healthy();
      reference = await session(endpoints, ports);
    } finally {
      await Promise.all(stops.map((s) => s()));
    }

    const dir = await tempDir();
    const members = await Promise.all(
      flagsOf(ports, dir).map((args, i) =>
        startMember({ dataDir: `${dir}/n${i + 1}.etcd`, clientPort: ports.clients[i], args })
      ),
    );
    try {
      await healthy();
      assertEquals(await session(endpoints, ports), reference);
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  },
});
