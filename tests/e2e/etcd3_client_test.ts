// The etcd3 npm client (gRPC through @grpc/grpc-js) against a real detcd process.
import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { Etcd3 } from "etcd3";
import { startMember } from "./harness.ts";

Deno.test({
  name: "etcd3 npm client: put, get, prefix, txn, delete, and etcd's errors",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const m = await startMember();
    const client = new Etcd3({ hosts: m.endpoint });
    try {
      await client.put("npm/a").value("hello");
      await client.put("npm/b").value("world");
      assertEquals(await client.get("npm/a").string(), "hello");
      assertEquals(await client.getAll().prefix("npm/").keys(), ["npm/a", "npm/b"]);
      const txn = await client.if("npm/a", "Value", "==", "hello").then(client.put("npm/a").value("swapped")).commit();
      assertEquals(txn.succeeded, true);
      assertEquals(await client.get("npm/a").string(), "swapped");
      assertEquals((await client.delete().prefix("npm/")).deleted, "2");
      assertEquals(await client.get("npm/a").string(), null);
      await rejects(client.get("npm/a").revision(1_000_000).string(), /required revision is a future revision/);
    } finally {
      // close the client before the server: Deno's node:http2 client can abort on the server's GOAWAY
      client.close();
      await m.stop();
    }
  },
});
