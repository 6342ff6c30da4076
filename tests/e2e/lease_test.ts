// Leases on a real detcd process: they survive a crash and restart (extended, with their keys), and the etcd3 npm
// client keeps one alive, lets one go and learns of one lost, the way applications use leases.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Etcd3 } from "etcd3";
import { ctl, noEtcdctl, startMember, waitUntil } from "./harness.ts";

const e2e = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "lease: leases and their keys survive a crash; the restarted leader extends them",
  ...e2e,
  ignore: noEtcdctl,
  fn: async () => {
    const m = await startMember();
    const id = /lease ([0-9a-f]+) granted/.exec(await ctl(m.endpoint, "lease", "grant", "30"))![1];
    await ctl(m.endpoint, "put", `--lease=${id}`, "svc/a", "1");
    await ctl(m.endpoint, "lease", "grant", "2"); // expires while the member is down
    await m.kill();
    const again = await startMember({ dataDir: m.dataDir, clientPort: m.clientPort });
    try {
      const ttl = await ctl(again.endpoint, "lease", "timetolive", id, "--keys");
      const [, granted, remaining, keys] = /TTL\((\d+)s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)/.exec(ttl)!;
      assertEquals([granted, keys], ["30", "svc/a"]);
      // counted down afresh from the full TTL plus an election timeout (1 s)
      assertEquals(Number(remaining) >= 28 && Number(remaining) <= 31, true, ttl);
      // the short lease was extended too, then expired under the new leader
      await waitUntil(
        async () => (await ctl(again.endpoint, "lease", "list")).startsWith("found 1 leases"),
        () => "the 2 s lease to expire after the restart",
      );
      await ctl(again.endpoint, "lease", "revoke", id);
      assertEquals(await ctl(again.endpoint, "get", "svc/a"), "");
    } finally {
      await again.stop();
    }
  },
});

Deno.test({
  name: "lease: etcd3 npm client keeps a lease alive, releases one, and sees one lost",
  ...e2e,
  fn: async () => {
    const m = await startMember();
    const client = new Etcd3({ hosts: m.endpoint });
    try {
      const kept = client.lease(2);
      await kept.put("app/kept").value("1");
      let beats = 0;
      kept.on("keepaliveSucceeded", () => beats++);
      // six keep-alives (every TTL/3) span twice the TTL: the key must still be there
      await waitUntil(() => beats >= 6, () => `six keep-alives (got ${beats})`);
      assertEquals(await client.get("app/kept").string(), "1");

      // released: no more keep-alives, the key goes with the lease's expiry
      kept.release();
      await waitUntil(
        async () => (await client.get("app/kept").string()) === null,
        () => "the released lease to expire",
      );

      // revoked behind the client's back: its next keep-alive finds the lease gone and the lease is lost
      const lost = client.lease(30);
      const id = BigInt(await lost.grant());
      let lostErr: Error | undefined;
      lost.on("lost", (err) => lostErr = err);
      await client.put("app/lost").value("1").lease(id.toString());
      await gatewayRevoke(m.endpoint, id);
      await lost.keepaliveOnce().catch(() => {});
      await waitUntil(() => lostErr !== undefined, () => "the revoked lease to be reported lost");
      assertEquals(await client.get("app/lost").string(), null);
    } finally {
      client.close();
      await m.stop();
    }
  },
});

/** Revokes through the Lease API's JSON gateway, as a third party would. */
async function gatewayRevoke(endpoint: string, id: bigint): Promise<void> {
  const r = await fetch(`http://${endpoint}/v3/lease/revoke`, {
    method: "POST",
    body: JSON.stringify({ ID: id.toString() }),
  });
  assertEquals(r.status, 200, await r.text());
}
