// etcd's JSON gateway on the client port.

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startServer } from "./fixtures/server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function post(port: number, path: string, body: string, method = "POST") {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method, body: method === "GET" ? undefined : body });
  return { status: r.status, type: r.headers.get("content-type"), json: await r.json() };
}

Deno.test(
  "gateway: put/range JSON uses proto field names, base64 bytes, int64 strings, omits defaults",
  opts,
  async () => {
    const srv = await startServer();
    try {
      const put = await post(srv.port, "/v3/kv/put", '{"key":"Zm9v","value":"YmFy"}');
      assertEquals(put.status, 200);
      assertEquals(put.type, "application/json");
      assertEquals(put.json, { header: { cluster_id: "1", member_id: "2", revision: "2", raft_term: "3" } });
      const r = await post(srv.port, "/v3/kv/range", '{"key":"Zm9v"}');
      assertEquals(r.json, {
        header: { cluster_id: "1", member_id: "2", revision: "2", raft_term: "3" },
        kvs: [{ key: "Zm9v", create_revision: "2", mod_revision: "2", version: "1", value: "YmFy" }],
        count: "1",
      });
      // Nothing found: kvs, count and more are defaults and are left out.
      const none = await post(srv.port, "/v3/kv/range", '{"key":"bm9uZQ=="}');
      assertEquals(Object.keys(none.json), ["header"]);
      // The lease alias paths map to the Lease service (not registered in the fake: Unimplemented = 501).
      const lease = await post(srv.port, "/v3/kv/lease/revoke", '{"ID":"1"}');
      assertEquals(lease.status, 404);
    } finally {
      await srv.close();
    }
  },
);

Deno.test("gateway: errors are grpc-gateway JSON with the mapped HTTP status", opts, async () => {
  const srv = await startServer();
  try {
    const noKey = await post(srv.port, "/v3/kv/range", "{}");
    assertEquals(noKey, {
      status: 400,
      type: "application/json",
      json: { error: "etcdserver: key is not provided", code: 3, message: "etcdserver: key is not provided" },
    });
    const unimpl = await post(srv.port, "/v3/kv/txn", "{}");
    assertEquals([unimpl.status, unimpl.json.code, unimpl.json.message], [
      501,
      12,
      "detcd: etcdserverpb.KV.Txn is not implemented yet",
    ]);
    // unknown fields are dropped as grpc-gateway drops them: "kee" is no key
    const unknownField = await post(srv.port, "/v3/kv/range", '{"kee":"Zm9v"}');
    assertEquals([unknownField.status, unknownField.json.message], [400, "etcdserver: key is not provided"]);
    const badJson = await post(srv.port, "/v3/kv/range", "{not json");
    assertEquals([badJson.status, badJson.json.code], [400, 3]);
    const notFound = await post(srv.port, "/v3/kv/nope", "{}");
    assertEquals([notFound.status, notFound.json.error], [404, "Not Found"]);
    const wrongMethod = await post(srv.port, "/v3/kv/range", "", "GET");
    assertEquals(wrongMethod.status, 405);
  } finally {
    await srv.close();
  }
});

Deno.test("gateway: /v3/watch streams newline-delimited {result} objects", opts, async () => {
  const srv = await startServer();
  try {
    const body =
      '{"create_request":{"key":"Zm9v","start_revision":"7"}}\n{"create_request":{"key":"Zm9v","start_revision":"8"}}';
    const r = await fetch(`http://127.0.0.1:${srv.port}/v3/watch`, { method: "POST", body });
    const lines = (await r.text()).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => [l.result.watch_id, l.result.created]), [["7", true], ["8", true]]);
  } finally {
    await srv.close();
  }
});
