// rpc/h2 over real sockets: node:http2 and connect-node clients (concurrency, flow control, resets, GOAWAY - the
// node:http2 crash case), hand-written malformed frames, and h2load when installed.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  KV,
  PutRequestSchema,
  RangeRequestSchema,
  RangeResponseSchema,
  WatchRequestSchema,
} from "../../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { encodeHeaders } from "../../../rpc/h2/hpack.ts";
import * as F from "../../../rpc/h2/frames.ts";
import { frame, rawGrpc, startServer, statusOf } from "../fixtures/server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = (s: string) => new TextEncoder().encode(s);
const rangeBody = (key: string) => frame(toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: enc(key) })));

// A unary Range on an existing session; resolves with grpc-status.
function rangeOn(session: http2.ClientHttp2Session, key: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const r = session.request({
      ":method": "POST",
      ":path": "/etcdserverpb.KV/Range",
      "content-type": "application/grpc",
    });
    r.on("trailers", (t) => resolve(String(t["grpc-status"])));
    r.on("error", reject);
    r.resume();
    r.end(rangeBody(key));
  });
}

async function alive(port: number) {
  const r = await rawGrpc(port, "/etcdserverpb.KV/Range", rangeBody("k"));
  assertEquals(statusOf(r).code, "0");
}

Deno.test("h2: 1000 concurrent unary calls over one connection (connect-node gRPC transport)", opts, async () => {
  const srv = await startServer();
  try {
    // The client is closed before the server: the server's GOAWAY would trip the same nghttp2 assertion
    // (denoland/deno#36788) in this process's node:http2 client.
    const sessionManager = new Http2SessionManager(`http://127.0.0.1:${srv.port}`);
    const kv = createClient(KV, createGrpcTransport({ baseUrl: `http://127.0.0.1:${srv.port}`, sessionManager }));
    try {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => kv.put({ key: enc(`k${i}`), value: enc(`v${i}`) })));
      const got = await Promise.all(Array.from({ length: 1000 }, (_, i) => kv.range({ key: enc(`k${i}`) })));
      got.forEach((r, i) => assertEquals(new TextDecoder().decode(r.kvs[0].value), `v${i}`));
    } finally {
      sessionManager.abort();
    }
  } finally {
    await srv.close();
  }
});

Deno.test("h2: 4 MiB request and response through flow control (64 KiB client windows)", opts, async () => {
  const srv = await startServer({ maxRecvBytes: 8 << 20 });
  const session = http2.connect(`http://127.0.0.1:${srv.port}`, { settings: { initialWindowSize: 65535 } });
  try {
    const value = new Uint8Array(4 << 20).map((_, i) => i % 251);
    const call = (path: string, body: Uint8Array) =>
      new Promise<{ status: string; body: Buffer }>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc" });
        const chunks: Buffer[] = [];
        let status = "";
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("response", (h) => (status = String(h["grpc-status"] ?? "") + String(h["grpc-message"] ?? "")));
        req.on("trailers", (t) => (status = String(t["grpc-status"])));
        req.on("close", () => resolve({ status, body: Buffer.concat(chunks) }));
        req.on("error", reject);
        req.end(body);
      });
    const put = await call(
      "/etcdserverpb.KV/Put",
      frame(toBinary(PutRequestSchema, create(PutRequestSchema, { key: enc("big"), value }))),
    );
    assertEquals(put.status, "0");
    const r = await call("/etcdserverpb.KV/Range", rangeBody("big"));
    assertEquals(r.status, "0");
    const res = fromBinary(RangeResponseSchema, r.body.subarray(5));
    assertEquals(res.kvs[0].value.length, value.length);
    assert(Buffer.from(res.kvs[0].value).equals(Buffer.from(value)));
  } finally {
    session.destroy();
    await srv.close();
  }
});

Deno.test("h2: client RST_STREAM mid-call, then the connection keeps serving", opts, async () => {
  const srv = await startServer();
  const session = http2.connect(`http://127.0.0.1:${srv.port}`);
  try {
    const req = session.request({
      ":method": "POST",
      ":path": "/etcdserverpb.Watch/Watch",
      "content-type": "application/grpc",
    });
    const first = new Promise((r) => req.once("data", r));
    const watch = { requestUnion: { case: "createRequest" as const, value: { key: enc("a"), startRevision: 7n } } };
    req.write(frame(toBinary(WatchRequestSchema, create(WatchRequestSchema, watch))));
    await first;
    req.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((r) => req.once("close", r));
    const again = await new Promise<string>((resolve, reject) => {
      const r = session.request({
        ":method": "POST",
        ":path": "/etcdserverpb.KV/Range",
        "content-type": "application/grpc",
      });
      r.on("trailers", (t) => resolve(String(t["grpc-status"])));
      r.on("error", reject);
      r.resume();
      r.end(rangeBody("a"));
    });
    assertEquals(again, "0");
  } finally {
    session.destroy();
    await srv.close();
  }
});

Deno.test("h2: 50 clients send GOAWAY with calls in flight and disconnect; the server survives", opts, async () => {
  const srv = await startServer();
  try {
    for (let i = 0; i < 50; i++) {
      const session = http2.connect(`http://127.0.0.1:${srv.port}`);
      await new Promise((r) => session.once("connect", r));
      for (let j = 0; j < 10; j++) {
        const req = session.request({
          ":method": "POST",
          ":path": "/etcdserverpb.KV/Put",
          "content-type": "application/grpc",
        });
        req.on("error", () => {});
        req.resume();
        req.end(frame(toBinary(PutRequestSchema, create(PutRequestSchema, { key: enc(`g${j}`), value: enc("x") }))));
      }
      session.goaway(0);
      if (i % 2 === 0) session.close();
      else session.destroy();
    }
    await alive(srv.port);
  } finally {
    await srv.close();
  }
});

// A raw connection: sends `bytes`, returns everything the server wrote until it closed the connection.
function rawExchange(port: number, bytes: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", reject);
    sock.on("close", () => resolve(Buffer.concat(chunks)));
    sock.write(bytes);
  });
}

function rawFrame(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const out = Buffer.alloc(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(id, 5);
  out.set(payload, 9);
  return out;
}

// The error code of the GOAWAY among the server's frames, or -1.
function goawayCode(buf: Buffer): number {
  for (let off = 0; off + 9 <= buf.length;) {
    const len = buf.readUIntBE(off, 3);
    if (buf[off + 3] === F.GOAWAY) return buf.readUInt32BE(off + 9 + 4);
    off += 9 + len;
  }
  return -1;
}

const SETTINGS = rawFrame(F.SETTINGS, 0, 0, new Uint8Array());
const withPreface = (...frames: Uint8Array[]) => Buffer.concat([F.PREFACE, SETTINGS, ...frames]);

Deno.test("h2: malformed input gets GOAWAY with the right code; other connections are unaffected", opts, async () => {
  const srv = await startServer();
  try {
    const requestHeaders = encodeHeaders({ ":method": "POST", ":path": "/x", ":scheme": "http", ":authority": "a" });
    const cases: [string, Uint8Array, number][] = [
      ["frame larger than max", withPreface(rawFrame(F.DATA, 0, 1, new Uint8Array(20000))), F.FRAME_SIZE_ERROR],
      [
        "HEADERS on stream 0",
        withPreface(rawFrame(F.HEADERS, F.FLAG_END_HEADERS, 0, requestHeaders)),
        F.PROTOCOL_ERROR,
      ],
      [
        "bad HPACK index",
        withPreface(rawFrame(F.HEADERS, F.FLAG_END_HEADERS, 1, new Uint8Array([0xff, 0x7f]))),
        F.COMPRESSION_ERROR,
      ],
      ["DATA on an idle stream", withPreface(rawFrame(F.DATA, 0, 5, new Uint8Array(3))), F.PROTOCOL_ERROR],
      ["CONTINUATION expected", withPreface(rawFrame(F.HEADERS, 0, 1, requestHeaders), SETTINGS), F.PROTOCOL_ERROR],
      ["bad PING length", withPreface(rawFrame(F.PING, 0, 0, new Uint8Array(3))), F.FRAME_SIZE_ERROR],
    ];
    // Not the HTTP/2 preface: the sniffer hands it to HTTP/1.1, which refuses it.
    const notH2 = await rawExchange(srv.port, enc("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + "x".repeat(20)));
    assert(notH2.toString().startsWith("HTTP/1.1 400"), notH2.toString());
    const survivor = http2.connect(`http://127.0.0.1:${srv.port}`);
    assertEquals(await rangeOn(survivor, "a"), "0");
    for (const [name, bytes, code] of cases) {
      assertEquals(goawayCode(await rawExchange(srv.port, bytes)), code, name);
    }
    assertEquals(await rangeOn(survivor, "a"), "0");
    survivor.destroy();
  } finally {
    await srv.close();
  }
});

Deno.test("h2: PING is answered; a request without :path is reset, the connection goes on", opts, async () => {
  const srv = await startServer();
  try {
    const sock = net.connect(srv.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    sock.on("data", (c: Buffer) => chunks.push(c));
    const noPath = encodeHeaders({ ":method": "POST", ":scheme": "http" });
    sock.write(withPreface(
      rawFrame(F.PING, 0, 0, enc("12345678")),
      rawFrame(F.HEADERS, F.FLAG_END_HEADERS | F.FLAG_END_STREAM, 1, noPath),
    ));
    await new Promise((r) => setTimeout(r, 100));
    const all = Buffer.concat(chunks);
    const types: number[] = [];
    for (let off = 0; off + 9 <= all.length; off += 9 + all.readUIntBE(off, 3)) types.push(all[off + 3]);
    assert(types.includes(F.PING) && types.includes(F.RST_STREAM) && !types.includes(F.GOAWAY), String(types));
    sock.destroy();
  } finally {
    await srv.close();
  }
});

const h2load = await new Deno.Command("h2load", { args: ["--version"], stdout: "null", stderr: "null" }).output()
  .then((o) => o.success, () => false);

Deno.test({
  name: "h2: h2load short runs (the node:http2 GOAWAY crash reproducer) x30; the server survives",
  ignore: !h2load,
  ...opts,
  fn: async () => {
    const srv = await startServer();
    const body = await Deno.makeTempFile();
    try {
      await Deno.writeFile(body, rangeBody("k"));
      const url = `http://127.0.0.1:${srv.port}/etcdserverpb.KV/Range`;
      for (let i = 0; i < 30; i++) {
        const args = ["-n", "500", "-c", "10", "-m", "10", "-d", body, "-H", "content-type: application/grpc", url];
        const out = await new Deno.Command("h2load", { args: [...args, "-H", "te: trailers"], stderr: "null" })
          .output();
        const text = new TextDecoder().decode(out.stdout);
        assert(text.includes("500 succeeded"), text);
      }
      await alive(srv.port);
    } finally {
      await Deno.remove(body);
      await srv.close();
    }
  },
});
