// Bad input gets etcd's error, changes nothing, and the member keeps serving.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { type ClientHttp2Stream, connect } from "node:http2";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { KV } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { type Member, startMember, watchersAre } from "./harness.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();

let member: Member | undefined;
async function m(): Promise<Member> {
  member ??= await startMember({ extraArgs: ["--max-txn-ops", "4", "--max-request-bytes", "4096"] });
  return member;
}

// gRPC-web over HTTP/1.1 runs the same service code as gRPC; Deno's node:http2 client
// can abort the test process when a server goes away (denoland/deno#36788).
function grpc(port: number) {
  return createClient(KV, createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
}

async function revision(port: number): Promise<bigint> {
  return (await grpc(port).range({ key: enc.encode("probe") })).header!.revision;
}

async function rejects(p: Promise<unknown>, code: Code, message: RegExp) {
  const err = await p.then(() => undefined, (e) => e);
  assert(err instanceof ConnectError, `expected an error, got ${err}`);
  assertEquals(Code[err.code], Code[code]);
  assertMatch(err.rawMessage, message);
}

function test(name: string, fn: (port: number) => Promise<void>) {
  Deno.test({
    name: `bad input: ${name}`,
    ...opts,
    fn: async () => {
      const port = (await m()).clientPort;
      const before = await revision(port);
      await fn(port);
      assertEquals(await revision(port), before, "bad input changed the store");
    },
  });
}

test("empty key", async (port) => {
  await rejects(
    grpc(port).put({ key: new Uint8Array(0), value: enc.encode("v") }),
    Code.InvalidArgument,
    /^etcdserver: key is not provided$/,
  );
  await rejects(
    grpc(port).range({ key: new Uint8Array(0) }),
    Code.InvalidArgument,
    /^etcdserver: key is not provided$/,
  );
});

test("request larger than --max-request-bytes", async (port) => {
  await rejects(
    grpc(port).put({ key: enc.encode("big"), value: new Uint8Array(8192) }),
    Code.InvalidArgument,
    /^etcdserver: request is too large$/,
  );
});

test("too many txn ops, duplicate keys in a txn", async (port) => {
  const put = (k: string) => ({
    request: { case: "requestPut" as const, value: { key: enc.encode(k), value: enc.encode("v") } },
  });
  await rejects(
    grpc(port).txn({ success: ["a", "b", "c", "d", "e"].map(put) }),
    Code.InvalidArgument,
    /^etcdserver: too many operations in txn request$/,
  );
  await rejects(
    grpc(port).txn({ success: [put("a"), put("a")] }),
    Code.InvalidArgument,
    /^etcdserver: duplicate key given in txn request$/,
  );
});

/** A frame whose body is a truncated length-delimited field. */
const MALFORMED_FRAME = Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x7f, 0x01]);

/** A raw gRPC call on its own HTTP/2 session: `send` writes the request; resolves with the status trailers. */
async function rawGrpc(
  port: number,
  path: string,
  send: (req: ClientHttp2Stream, fail: (e: unknown) => void) => void,
): Promise<Record<string, unknown>> {
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      req.on("trailers", (t) => resolve(t));
      req.on("response", (h) => {
        if (h["grpc-status"] !== undefined) resolve(h);
      });
      req.on("error", reject);
      send(req, reject);
    });
  } finally {
    session.close();
  }
}

function assertUnmarshalError(trailers: Record<string, unknown>) {
  assertEquals(trailers["grpc-status"], "13");
  assertMatch(decodeURIComponent(String(trailers["grpc-message"])), /^grpc: error unmarshalling request/);
}

test("malformed protobuf", async (port) => {
  assertUnmarshalError(
    await rawGrpc(port, "/etcdserverpb.KV/Put", (req) => {
      req.on("data", () => {});
      req.end(MALFORMED_FRAME);
    }),
  );
});

test("a malformed watch request ends that stream with a gRPC error; its watchers are freed", async (port) => {
  assertUnmarshalError(
    await rawGrpc(port, "/etcdserverpb.Watch/Watch", (req, fail) => {
      // a good create request (key "w"); once it is answered (created), a truncated one on the same stream
      const good = [0x0a, 0x03, 0x0a, 0x01, 0x77];
      req.write(Buffer.from([0, 0, 0, 0, good.length, ...good]));
      req.once("data", () => {
        watchersAre(`127.0.0.1:${port}`, 1).then(() => req.write(MALFORMED_FRAME), fail);
      });
    }),
  );
  await watchersAre(`127.0.0.1:${port}`, 0);
});

test("malformed JSON and unknown paths on the gateway", async (port) => {
  const bad = await fetch(`http://127.0.0.1:${port}/v3/kv/put`, { method: "POST", body: '{"key":' });
  assertEquals(bad.status, 400);
  const body = await bad.json();
  assertEquals(body.code, 3);
  const unknown = await fetch(`http://127.0.0.1:${port}/v3/kv/nope`, { method: "POST", body: "{}" });
  assertEquals(unknown.status, 404);
  await unknown.body?.cancel();
  const emptyKey = await fetch(`http://127.0.0.1:${port}/v3/kv/put`, { method: "POST", body: '{"value":"eA=="}' });
  assertEquals((await emptyKey.json()).error, "etcdserver: key is not provided");
});

test("Connect over HTTP/1.1 gets the same errors", async (port) => {
  const c = createClient(KV, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
  await rejects(c.put({ key: new Uint8Array(0) }), Code.InvalidArgument, /^etcdserver: key is not provided$/);
});

Deno.test({
  name: "bad input: the member still serves, then stops cleanly",
  ...opts,
  fn: async () => {
    const mm = await m();
    const c = createClient(
      KV,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${mm.clientPort}`, httpVersion: "1.1" }),
    );
    await c.put({ key: enc.encode("after"), value: enc.encode("ok") });
    const got = await c.range({ key: enc.encode("after") });
    assertEquals(new TextDecoder().decode(got.kvs[0].value), "ok");
    assertEquals(await mm.stop(), 0);
  },
});
