// gRPC over HTTP/2 on the fast path: a raw node:http2 client and connect-node's gRPC transport.

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  KV,
  PutRequestSchema,
  RangeRequestSchema,
  RangeResponseSchema,
  Watch,
  WatchRequestSchema,
  WatchResponseSchema,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { frame, MAX_RECV, rawGrpc, startServer, statusOf } from "./fixtures/server.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("grpc raw: put then range round-trips with headers, one message and OK trailers", opts, async () => {
  const srv = await startServer();
  try {
    const put = await rawGrpc(
      srv.port,
      "/etcdserverpb.KV/Put",
      frame(toBinary(PutRequestSchema, create(PutRequestSchema, { key: enc("foo"), value: enc("bar") }))),
    );
    assertEquals(put.headers[":status"], 200);
    assertEquals(put.headers["content-type"], "application/grpc");
    assertEquals(statusOf(put).code, "0");
    const r = await rawGrpc(
      srv.port,
      "/etcdserverpb.KV/Range",
      frame(toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: enc("foo") }))),
    );
    assertEquals(r.trailers["grpc-status"], "0");
    assertEquals(r.messages.length, 1);
    const res = fromBinary(RangeResponseSchema, r.messages[0]);
    assertEquals(new TextDecoder().decode(res.kvs[0].value), "bar");
    assertEquals(res.count, 1n);
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: RpcError code and percent-encoded message go to trailers", opts, async () => {
  const srv = await startServer();
  try {
    const r = await rawGrpc(srv.port, "/etcdserverpb.KV/Range", frame(new Uint8Array()));
    assertEquals(statusOf(r), { code: "3", message: "etcdserver: key is not provided" });
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: missing implementation and unknown method are Unimplemented", opts, async () => {
  const srv = await startServer();
  try {
    const r = await rawGrpc(srv.port, "/etcdserverpb.KV/Txn", frame(new Uint8Array()));
    assertEquals(statusOf(r), { code: "12", message: "detcd: etcdserverpb.KV.Txn is not implemented yet" });
    const u = await rawGrpc(srv.port, "/etcdserverpb.Nope/Nope", frame(new Uint8Array()));
    assertEquals(statusOf(u).code, "12");
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: malformed protobuf is Internal with grpc-go's wording", opts, async () => {
  const srv = await startServer();
  try {
    const r = await rawGrpc(srv.port, "/etcdserverpb.KV/Range", frame(new Uint8Array([0x0a, 0x05, 0x01])));
    const s = statusOf(r);
    assertEquals(s.code, "13");
    assert(s.message.startsWith("grpc: error unmarshalling request: "), s.message);
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: oversized message is ResourceExhausted without reading it all", opts, async () => {
  const srv = await startServer();
  try {
    const big = new Uint8Array(MAX_RECV * 4);
    const r = await rawGrpc(srv.port, "/etcdserverpb.KV/Put", frame(big));
    assertEquals(statusOf(r), {
      code: "8",
      message: `grpc: received message larger than max (${MAX_RECV * 4} vs. ${MAX_RECV})`,
    });
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: compressed frames and unknown grpc-encoding are refused", opts, async () => {
  const srv = await startServer();
  try {
    const flagged = await rawGrpc(srv.port, "/etcdserverpb.KV/Range", frame(new Uint8Array(), 1));
    assertEquals(statusOf(flagged).code, "13");
    const gz = await rawGrpc(srv.port, "/etcdserverpb.KV/Range", frame(new Uint8Array(), 1), {
      "grpc-encoding": "gzip",
    });
    assertEquals(statusOf(gz).code, "12");
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: a request split across many DATA frames is reassembled", opts, async () => {
  const srv = await startServer();
  try {
    const body = frame(
      toBinary(PutRequestSchema, create(PutRequestSchema, { key: enc("k"), value: new Uint8Array(40_000).fill(7) })),
    );
    const r = await rawGrpc(srv.port, "/etcdserverpb.KV/Put", body);
    assertEquals(statusOf(r).code, "0");
  } finally {
    await srv.close();
  }
});

function grpcClients(port: number) {
  const sessionManager = new Http2SessionManager(`http://127.0.0.1:${port}`);
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, sessionManager });
  return { kv: createClient(KV, transport), watch: createClient(Watch, transport), sessionManager };
}

Deno.test("grpc connect-node transport: unary, errors, Unimplemented", opts, async () => {
  const srv = await startServer();
  const { kv, sessionManager } = grpcClients(srv.port);
  try {
    await kv.put({ key: enc("a"), value: enc("1") });
    const r = await kv.range({ key: enc("a") });
    assertEquals(new TextDecoder().decode(r.kvs[0].value), "1");
    assertEquals(r.header?.revision, 2n);
    await rejects(kv.range({}), (e: ConnectError) => {
      assertEquals([e.code, e.rawMessage], [Code.InvalidArgument, "etcdserver: key is not provided"]);
      return true;
    });
    await rejects(kv.txn({}), (e: ConnectError) => {
      assertEquals([e.code, e.rawMessage], [Code.Unimplemented, "detcd: etcdserverpb.KV.Txn is not implemented yet"]);
      return true;
    });
    const d = await kv.deleteRange({ key: enc("a") });
    assertEquals(d.deleted, 1n);
  } finally {
    sessionManager.abort();
    await srv.close();
  }
});

Deno.test(
  "grpc connect-node transport: bidi Watch echoes as requests arrive, error status ends the stream",
  opts,
  async () => {
    const srv = await startServer();
    const { watch, sessionManager } = grpcClients(srv.port);
    try {
      const queue: ((v: IteratorResult<unknown>) => void)[] = [];
      const sent: number[] = [];
      // Interleaved: request n+1 is only sent after response n arrived, which proves streaming (not buffering).
      const requests = async function* () {
        for (let i = 1; i <= 3; i++) {
          sent.push(i);
          yield create(WatchRequestSchema, {
            requestUnion: { case: "createRequest", value: { startRevision: BigInt(i) } },
          });
          await new Promise((r) => queue.push(r));
        }
      };
      const ids: bigint[] = [];
      for await (const res of watch.watch(requests())) {
        ids.push(res.watchId);
        queue.shift()?.({ value: undefined, done: true });
      }
      assertEquals(ids, [1n, 2n, 3n]);
      assertEquals(sent, [1, 2, 3]);

      const cancelAfterOne = async function* () {
        yield create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { startRevision: 9n } } });
        yield create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: 9n } } });
      };
      const got: bigint[] = [];
      await rejects(
        (async () => {
          for await (const res of watch.watch(cancelAfterOne())) got.push(res.watchId);
        })(),
        (e: ConnectError) =>
          e.code === Code.FailedPrecondition && e.rawMessage === "etcdserver: watch canceled by test",
      );
      assertEquals(got, [9n]);
    } finally {
      sessionManager.abort();
      await srv.close();
    }
  },
);

Deno.test("grpc raw: bidi stream framing (several requests in one body, half-close)", opts, async () => {
  const srv = await startServer();
  try {
    const reqs = [1n, 2n].map((n) =>
      frame(
        toBinary(
          WatchRequestSchema,
          create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { startRevision: n } } }),
        ),
      )
    );
    const r = await rawGrpc(srv.port, "/etcdserverpb.Watch/Watch", new Uint8Array(Buffer.concat(reqs)));
    assertEquals(statusOf(r).code, "0");
    assertEquals(r.messages.map((m) => fromBinary(WatchResponseSchema, m).watchId), [1n, 2n]);
  } finally {
    await srv.close();
  }
});

Deno.test("grpc raw: calls past their grpc-timeout end with DeadlineExceeded, in deadline order", opts, async () => {
  const srv = await startServer();
  const session = http2.connect(`http://127.0.0.1:${srv.port}`);
  try {
    const t0 = Date.now();
    const order: string[] = [];
    // Open watch streams that never half-close: only their deadline ends them.
    const open = (timeout: string) =>
      new Promise<{ status: string; ms: number }>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/etcdserverpb.Watch/Watch",
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": timeout,
        });
        let status = "";
        req.on("response", (h) => status = String(h["grpc-status"] ?? status));
        req.on("trailers", (t) => status = String(t["grpc-status"]));
        req.on("error", reject);
        req.on("end", () => {
          order.push(timeout);
          resolve({ status, ms: Date.now() - t0 });
          req.close();
        });
        req.resume();
      });
    const [late, early, unhurried] = await Promise.all([open("300m"), open("50m"), open("300000u")]);
    assertEquals([late.status, early.status, unhurried.status], ["4", "4", "4"]);
    assert(early.ms >= 45 && early.ms < 250, `50ms deadline fired after ${early.ms} ms`);
    assert(late.ms >= 295, `300ms deadline fired after ${late.ms} ms`);
    assertEquals(order[0], "50m");
  } finally {
    session.close();
    await srv.close();
  }
});
