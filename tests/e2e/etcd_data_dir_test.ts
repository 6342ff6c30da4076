// A data dir Debian's etcd 3.4 wrote, given to detcd with the same flags: detcd rewrites etcd's bbolt backend as its own
// on open, restarts from etcd's snapshot (its v2 store holds the membership) and WAL, and serves the same members,
// keys, lease, revisions and HashKV, then goes on writing and restarts from its own files.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { ctl, etcdctl, freePort, startMember, tempDir, waitUntil } from "./harness.ts";
import { dataAnswers, normalize, opts, post, startReferenceMember } from "./reference.ts";

/** What both servers must answer alike on the same data: the members, then the data (see dataAnswers). */
async function answers(ep: string): Promise<string[]> {
  return [
    normalize(await ctl(ep, "member", "list", "-w", "json"), ep).replace(/"raft_term":\d+/g, '"raft_term":T'),
    ...await dataAnswers(ep, 20),
  ];
}

Deno.test({
  name: "etcd's data dir: detcd starts on what Debian's etcd wrote, answers as it did, writes on and restarts",
  ...opts,
  fn: async () => {
    const dir = `${await tempDir()}/m1.etcd`;
    const [client, peer] = [await freePort(), await freePort()];
    const ep = `127.0.0.1:${client}`;
    const flags = [
      "--name=m1",
      `--data-dir=${dir}`,
      `--listen-client-urls=http://${ep}`,
      `--advertise-client-urls=http://${ep}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=m1=http://127.0.0.1:${peer}`,
      "--snapshot-count=10", // etcd snapshots its membership (a v2 store) every 10 entries
    ];
    const stopEtcd = startReferenceMember(flags);
    let before: string[];
    try {
      await waitUntil(async () => (await etcdctl(ep, ["put", "k0", "first"])).code === 0, () => "etcd to serve");
      assertEquals((await post(ep, "/v3/lease/grant", JSON.stringify({ TTL: 600, ID: 4660 }))).status, 200);
      for (let i = 0; i < 40; i++) await ctl(ep, "put", `k${i % 15}`, `v${i}`);
      await ctl(ep, "del", "k1", "k4");
      await ctl(ep, "put", "--lease=1234", "leased", "x");
      await ctl(ep, "compact", "25");
      // a member removed (etcd's store keeps removed IDs apart), and a learner that never starts
      // etcdctl prints the ID with %16x: an ID below 2^60 comes padded with spaces
      const gone = /Member +([0-9a-f]+) added/.exec(
        await ctl(ep, "member", "add", "gone", `--peer-urls=http://127.0.0.1:${await freePort()}`, "--learner"),
      )![1];
      await ctl(ep, "member", "remove", gone);
      await ctl(ep, "member", "add", "learner", `--peer-urls=http://127.0.0.1:${await freePort()}`, "--learner");
      for (let i = 0; i < 12; i++) await ctl(ep, "put", "k0", `again${i}`); // past the membership changes: a snapshot
      before = await answers(ep);
    } finally {
      await stopEtcd();
    }

    let member = await startMember({ args: flags, dataDir: dir });
    try {
      assertMatch(member.log(), /"msg":"rewrote etcd's bbolt backend as detcd's backend"/);
      const restart = JSON.parse(/.*"msg":"restarting local member".*/.exec(member.log())![0]);
      assert(restart["snapshot-index"] > 50, JSON.stringify(restart));
      assertEquals(await answers(ep), before);
      assertEquals(await ctl(ep, "put", "after", "1"), "OK\n");
      await member.stop();
      member = await startMember({ args: flags, dataDir: dir });
      assert(!member.log().includes("rewrote etcd's bbolt backend"), "imported once");
      assertEquals(await ctl(ep, "get", "after", "--print-value-only"), "1\n");
      // 1, then k0, 40 puts, the delete, the leased put, 12 puts, and "after"
      assertMatch(await ctl(ep, "endpoint", "status", "-w", "json"), /"revision":57,/);
    } finally {
      await member.stop();
    }
  },
});
