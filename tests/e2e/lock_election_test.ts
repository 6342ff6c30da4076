// Locks and elections as applications use them through the etcd3 npm client (its recipes over leases, txns and
// watches), against a real detcd process: mutual exclusion among contending clients, and an election won,
// observed, proclaimed and resigned.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Etcd3, EtcdLockFailedError } from "etcd3";
import { startMember, waitUntil } from "./harness.ts";

const e2e = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "lock: several etcd3 clients contend for one lock; never two inside",
  ...e2e,
  fn: async () => {
    const m = await startMember();
    const clients = Array.from({ length: 4 }, () => new Etcd3({ hosts: m.endpoint }));
    try {
      let inside = 0, most = 0, entries = 0;
      const worker = async (c: Etcd3) => {
        for (let done = 0; done < 5;) {
          try {
            await c.lock("shared").ttl(10).do(async () => {
              inside++;
              most = Math.max(most, inside);
              // hold the lock across a round trip, so that the others try while it is held
              await c.put("counter").value(String(++entries));
              inside--;
            });
            done++;
          } catch (err) {
            if (!(err instanceof EtcdLockFailedError)) throw err;
          }
        }
      };
      await Promise.all(clients.map(worker));
      assertEquals([most, entries], [1, 20]);
      assertEquals(await clients[0].get("counter").string(), "20");
      assertEquals(await clients[0].getAll().prefix("shared").keys(), [], "every lock key released");
    } finally {
      for (const c of clients) c.close();
      await m.stop();
    }
  },
});

Deno.test({
  name: "election: etcd3 clients campaign, observe, proclaim and resign",
  ...e2e,
  fn: async () => {
    const m = await startMember();
    const a = new Etcd3({ hosts: m.endpoint }), b = new Etcd3({ hosts: m.endpoint });
    try {
      const seen: (string | undefined)[] = [];
      const observer = await a.election("svc").observe();
      observer.on("change", (v) => seen.push(v));
      const first = a.election("svc").campaign("node-a");
      await first.wait();
      const second = b.election("svc").campaign("node-b");
      let secondElected = false;
      second.on("elected", () => secondElected = true);
      await waitUntil(() => seen.includes("node-a"), () => `the observer to see node-a: ${seen}`);
      await first.proclaim("node-a2");
      await waitUntil(() => seen.includes("node-a2"), () => `the observer to see node-a2: ${seen}`);
      assertEquals(secondElected, false, "only one leader");
      await first.resign();
      await second.wait();
      await waitUntil(() => seen.includes("node-b"), () => `the observer to see node-b: ${seen}`);
      assertEquals(await b.election("svc").leader(), "node-b");
      await observer.cancel();
      await second.resign();
      assertEquals(await a.election("svc").leader(), undefined);
    } finally {
      a.close();
      b.close();
      await m.stop();
    }
  },
});
