// Connect (HTTP/1.1 and h2) and gRPC-web through connect-node's adapter on the same port as the gRPC fast path.

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { KV, Watch, WatchRequestSchema } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { MAX_RECV, startServer } from "./fixtures/server.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const opts = { sanitizeOps: false, sanitizeResources: false };

type Make = (baseUrl: string, sm?: Http2SessionManager) => Transport;
const transports: [string, boolean, Make][] = [
  ["connect http/1.1", false, (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
  [
    "connect h2",
    true,
    (baseUrl, sessionManager) => createConnectTransport({ baseUrl, httpVersion: "2", sessionManager }),
  ],
  [
    "connect json h2",
    true,
    (baseUrl, sessionManager) =>
      createConnectTransport({ baseUrl, httpVersion: "2", sessionManager, useBinaryFormat: false }),
  ],
  ["grpc-web http/1.1", false, (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
  [
    "grpc-web h2",
    true,
    (baseUrl, sessionManager) => createGrpcWebTransport({ baseUrl, httpVersion: "2", sessionManager }),
  ],
];

for (const [name, h2, make] of transports) {
  Deno.test(`${name}: unary round-trip, RpcError code/message, Unimplemented, oversized`, opts, async () => {
    const srv = await startServer();
    const baseUrl = `http://127.0.0.1:${srv.port}`;
    const sm = h2 ? new Http2SessionManager(baseUrl) : undefined;
    const kv = createClient(KV, make(baseUrl, sm));
    try {
      await kv.put({ key: enc("x"), value: enc("y") });
      const r = await kv.range({ key: enc("x") });
      assertEquals(new TextDecoder().decode(r.kvs[0].value), "y");
      const expectError = async (p: Promise<unknown>, code: Code, message: string) => {
        await rejects(p, (e: ConnectError) => {
          assertEquals([Code[e.code], e.rawMessage], [Code[code], message]);
          return true;
        });
      };
      await expectError(kv.range({}), Code.InvalidArgument, "etcdserver: key is not provided");
      await expectError(kv.txn({}), Code.Unimplemented, "detcd: etcdserverpb.KV.Txn is not implemented yet");
      // gRPC-web's HTTP/1.1 client gives up uploading when the early error response arrives and reports Aborted.
      const tooBig = name === "grpc-web http/1.1" ? [Code.ResourceExhausted, Code.Aborted] : [Code.ResourceExhausted];
      await rejects(kv.put({ key: enc("big"), value: new Uint8Array(MAX_RECV * 2) }), (e: ConnectError) => {
        assert(tooBig.includes(e.code), `${name}: ${Code[e.code]} ${e.rawMessage}`);
        return true;
      });
    } finally {
      sm?.abort();
      await srv.close();
    }
  });
}

Deno.test("connect h2: bidi Watch streams through the adapter; server-side error keeps its code", opts, async () => {
  const srv = await startServer();
  const baseUrl = `http://127.0.0.1:${srv.port}`;
  const sm = new Http2SessionManager(baseUrl);
  const watch = createClient(Watch, createConnectTransport({ baseUrl, httpVersion: "2", sessionManager: sm }));
  try {
    const reqs = async function* () {
      yield create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { startRevision: 5n } } });
      yield create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: 5n } } });
    };
    const ids: bigint[] = [];
    await rejects(
      (async () => {
        for await (const r of watch.watch(reqs())) ids.push(r.watchId);
      })(),
      (e: ConnectError) => e.code === Code.FailedPrecondition && e.rawMessage === "etcdserver: watch canceled by test",
    );
    assertEquals(ids, [5n]);
  } finally {
    sm.abort();
    await srv.close();
  }
});
