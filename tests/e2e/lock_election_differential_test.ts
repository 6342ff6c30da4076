// Differential lock and election tests against Debian's etcd 3.4: etcdctl's lock and elect (client-side recipes
// over leases, txns and watches) in several shells, and the server-side v3lock / v3election services through the
// JSON gateway, print and answer the same on both servers.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type BackgroundCtl, ctl, etcdctl, spawnEtcdctl, waitUntil, watchersAre } from "./harness.ts";
import { firstLine, normalize, opts, post, withBoth } from "./reference.ts";

/** etcdctl's session keys end in the lease ID, which differs between servers. */
const leaseKeys = (s: string) => s.replace(/\/[0-9a-f]{16}\b/g, "/LEASE");

function bothShells(ref: string, mine: string, args: string[]): [BackgroundCtl, BackgroundCtl] {
  return [spawnEtcdctl(ref, args), spawnEtcdctl(mine, args)];
}

function sameOutput([a, b]: [BackgroundCtl, BackgroundCtl], ref: string, mine: string, what: string) {
  assertEquals(leaseKeys(normalize(b.stdout(), mine)), leaseKeys(normalize(a.stdout(), ref)), what);
}

Deno.test({
  name: "differential lock and elect: etcdctl in two shells, the second waits for the first",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      // lock with a command: runs it holding the lock
      for (const ep of [ref, mine]) {
        assertEquals((await etcdctl(ep, ["lock", "mylock", "--", "echo", "held"])).stdout, "held\n");
      }
      const first = bothShells(ref, mine, ["lock", "mylock"]);
      for (const c of first) {
        await waitUntil(() => c.stdout().includes("mylock/"), () => `first lock: ${c.stdout()}`);
      }
      const second = bothShells(ref, mine, ["lock", "mylock"]);
      // the second waits on a watch of the first's key
      await watchersAre(ref, 1);
      await watchersAre(mine, 1);
      assertEquals(second.map((c) => c.stdout()), ["", ""]);
      await Promise.all(first.map((c) => c.stop()));
      for (const c of second) await waitUntil(() => c.stdout().includes("mylock/"), () => `second lock: ${c.stdout()}`);
      sameOutput(second, ref, mine, "lock mylock");
      await Promise.all(second.map((c) => c.stop()));

      const p1 = bothShells(ref, mine, ["elect", "myelection", "p1"]);
      for (const c of p1) await waitUntil(() => c.stdout().includes("p1"), () => `elect p1: ${c.stdout()}`);
      sameOutput(p1, ref, mine, "elect myelection p1");
      const observer = bothShells(ref, mine, ["elect", "-l", "myelection"]);
      for (const c of observer) await waitUntil(() => c.stdout().includes("p1"), () => `elect -l: ${c.stdout()}`);
      const p2 = bothShells(ref, mine, ["elect", "myelection", "p2"]);
      await watchersAre(ref, 2);
      await watchersAre(mine, 2);
      await Promise.all(p1.map((c) => c.stop())); // p1 resigns
      for (const c of p2) await waitUntil(() => c.stdout().includes("p2"), () => `elect p2: ${c.stdout()}`);
      for (const c of observer) await waitUntil(() => c.stdout().includes("p2"), () => `elect -l: ${c.stdout()}`);
      sameOutput(p2, ref, mine, "elect myelection p2");
      sameOutput(observer, ref, mine, "elect -l myelection");
      await Promise.all([...p2, ...observer].map((c) => c.stop()));
      assertEquals(
        leaseKeys(await ctl(mine, "get", "--prefix", "my")),
        leaseKeys(await ctl(ref, "get", "--prefix", "my")),
      );
    }),
});

Deno.test({
  name: "differential lock and election services over the JSON gateway",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const both = async (path: string, body: string) => {
        const r = await post(mine, path, body);
        assertEquals(r, await post(ref, path, body), `${path} ${body}`);
        return r.json as { header?: { revision: string } };
      };
      await both("/v3/lease/grant", '{"TTL":30,"ID":7}');
      await both("/v3/lease/grant", '{"TTL":30,"ID":8}');
      await both("/v3/lock/lock", '{"name":"bG9jaw==","lease":7}'); // lock -> lock/7
      // a second holder waits for the first's key to go
      const waiting = [ref, mine].map((ep) => post(ep, "/v3/lock/lock", '{"name":"bG9jaw==","lease":8}'));
      await watchersAre(ref, 1);
      await watchersAre(mine, 1);
      await both("/v3/lock/unlock", '{"key":"bG9jay83"}');
      const [a, b] = await Promise.all(waiting);
      assertEquals(b, a, "the second lock");
      await both("/v3/lock/lock", '{"name":"bG9jaw==","lease":99}'); // no such lease
      await both("/v3/lock/lock", '{"name":"bG9jaw==","lease":8}'); // held by this lease already
      await both("/v3/lock/unlock", '{"key":"bG9jay84"}');

      await both("/v3/election/leader", '{"name":"ZWxl"}'); // no leader
      const won = await both("/v3/election/campaign", '{"name":"ZWxl","lease":7,"value":"djE="}');
      await both("/v3/election/leader", '{"name":"ZWxl"}');
      // the leader key as the campaign answered it (the masked answer hides "leader", a Status field's name too)
      const leaderKey = { name: "ZWxl", key: "ZWxlLzc=", rev: won.header!.revision, lease: "7" };
      const leader = JSON.stringify(leaderKey);
      assertEquals(
        await firstLine(mine, "/v3/election/observe", '{"name":"ZWxl"}'),
        await firstLine(ref, "/v3/election/observe", '{"name":"ZWxl"}'),
      );
      await both("/v3/election/proclaim", `{"leader":${leader},"value":"djI="}`);
      await both("/v3/election/proclaim", '{"value":"djI="}'); // no leader field
      const stale = JSON.stringify({ ...leaderKey, rev: "1" });
      await both("/v3/election/proclaim", `{"leader":${stale},"value":"djM="}`); // not the campaign's revision
      await both("/v3/election/leader", '{"name":"ZWxl"}');
      // a second candidate waits; the leader resigns; the second is elected
      const campaigns = [ref, mine].map((ep) =>
        post(ep, "/v3/election/campaign", '{"name":"ZWxl","lease":8,"value":"djQ="}')
      );
      await watchersAre(ref, 1);
      await watchersAre(mine, 1);
      await both("/v3/election/resign", `{"leader":${leader}}`);
      const [c, d] = await Promise.all(campaigns);
      assertEquals(d, c, "the second campaign");
      await both("/v3/election/leader", '{"name":"ZWxl"}');
      await both("/v3/election/resign", "{}");
      // revoking the leader's lease ends its leadership
      await both("/v3/lease/revoke", '{"ID":8}');
      await both("/v3/election/leader", '{"name":"ZWxl"}');
    }),
});
