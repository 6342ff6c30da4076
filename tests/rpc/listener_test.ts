// The client-URL listener: protocol sniffing on one port, plain endpoints, CORS, shutdown and URL errors.

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { serveClientUrl } from "../../rpc/listener.ts";
import { register } from "../../rpc/services.ts";
import { KV } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { rawGrpc, startServer, statusOf } from "./fixtures/server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function h2Get(port: number, path: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = session.request({ ":path": path });
    let status = 0, body = "";
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (c) => (body += c));
    req.on("end", () => resolve({ status, body }));
    req.on("error", reject);
    req.end();
  }).finally(() => session.close());
}

Deno.test("listener: HTTP/1.1 and HTTP/2 prior knowledge share the port; plain endpoints on both", opts, async () => {
  const srv = await startServer();
  try {
    const h1 = await fetch(`http://127.0.0.1:${srv.port}/health`);
    assertEquals([h1.status, await h1.text()], [200, '{"health":"true"}']);
    assertEquals(await h2Get(srv.port, "/health"), { status: 200, body: '{"health":"true"}' });
    const grpc = await rawGrpc(srv.port, "/etcdserverpb.KV/Range", new Uint8Array([0, 0, 0, 0, 0]));
    assertEquals(statusOf(grpc).code, "3");
    const missing = await fetch(`http://127.0.0.1:${srv.port}/nothing-here`);
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await srv.close();
  }
});

Deno.test("listener: a slow first packet (preface split across writes) is still sniffed as HTTP/2", opts, async () => {
  const srv = await startServer();
  try {
    const sock = net.connect(srv.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    sock.write("PRI * HTTP/2.0\r\n");
    await new Promise((r) => setTimeout(r, 30));
    sock.write("\r\nSM\r\n\r\n");
    sock.write(new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0])); // empty SETTINGS
    const first = await new Promise<Uint8Array>((r) => sock.once("data", r));
    assertEquals(first[3], 4, "server answered with an HTTP/2 SETTINGS frame");
    sock.destroy();
  } finally {
    await srv.close();
  }
});

Deno.test("listener: CORS preflight and actual request headers", opts, async () => {
  const srv = await startServer();
  try {
    const pre = await fetch(`http://127.0.0.1:${srv.port}/etcdserverpb.KV/Range`, {
      method: "OPTIONS",
      headers: {
        origin: "http://allowed.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version",
      },
    });
    assertEquals(pre.status, 204);
    assertEquals(pre.headers.get("access-control-allow-origin"), "http://allowed.example");
    const allowed = pre.headers.get("access-control-allow-headers") ?? "";
    for (
      const h of [
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
      ]
    ) {
      assert(allowed.includes(h), `preflight allows ${h}: ${allowed}`);
    }
    const actual = await fetch(`http://127.0.0.1:${srv.port}/v3/kv/range`, {
      method: "POST",
      headers: { origin: "http://allowed.example" },
      body: '{"key":"Zm9v"}',
    });
    assertEquals(actual.headers.get("access-control-allow-origin"), "http://allowed.example");
    assert((actual.headers.get("access-control-expose-headers") ?? "").includes("grpc-status"));
    await actual.body?.cancel();
    const other = await fetch(`http://127.0.0.1:${srv.port}/health`, { headers: { origin: "http://evil.example" } });
    assertEquals(other.headers.get("access-control-allow-origin"), null);
    await other.body?.cancel();
  } finally {
    await srv.close();
  }
});

Deno.test("listener: close() lets in-flight requests finish, then refuses connections", opts, async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const inFlight = new Promise<void>((r) => (started = r));
  const srv = await serveClientUrl(new URL("http://127.0.0.1:0"), {
    services: [register(KV, {
      async range() {
        started();
        await gate;
        return { count: 42n };
      },
    })],
    maxRecvBytes: 1024,
  });
  const grpc = rawGrpc(srv.port, "/etcdserverpb.KV/Range", new Uint8Array([0, 0, 0, 0, 0]));
  const h1 = fetch(`http://127.0.0.1:${srv.port}/v3/kv/range`, { method: "POST", body: "{}" });
  await inFlight;
  await new Promise((r) => setTimeout(r, 20)); // both requests are in the handler
  const closing = srv.close();
  setTimeout(release, 50);
  const [g, h] = await Promise.all([grpc, h1]);
  assertEquals(statusOf(g).code, "0");
  assertEquals(await h.json(), { count: "42" });
  await closing;
  await rejects(fetch(`http://127.0.0.1:${srv.port}/health`));
});

Deno.test("listener: close() cuts requests that outlive closeTimeoutMs", opts, async () => {
  const srv = await serveClientUrl(new URL("http://127.0.0.1:0"), {
    services: [register(KV, { range: () => new Promise(() => {}) })],
    maxRecvBytes: 1024,
    closeTimeoutMs: 100,
  });
  const stuck = rawGrpc(srv.port, "/etcdserverpb.KV/Range", new Uint8Array([0, 0, 0, 0, 0])).catch((e) => e);
  await new Promise((r) => setTimeout(r, 30));
  const t0 = Date.now();
  await srv.close();
  assert(Date.now() - t0 < 2000);
  await stuck;
});

Deno.test("listener: URL errors name the URL", async () => {
  await rejects(
    serveClientUrl(new URL("https://127.0.0.1:0"), { services: [], maxRecvBytes: 1 }),
    /https:\/\/127\.0\.0\.1:0\/: an https:\/\/ client URL needs a certificate and key/,
  );
  await rejects(serveClientUrl(new URL("unix://localhost:1234"), { services: [], maxRecvBytes: 1 }), /unix socket/);
  const a = await serveClientUrl(new URL("http://127.0.0.1:0"), { services: [], maxRecvBytes: 1 });
  try {
    await rejects(
      serveClientUrl(new URL(`http://127.0.0.1:${a.port}`), { services: [], maxRecvBytes: 1 }),
      new RegExp(`cannot listen on client URL http://127.0.0.1:${a.port}/: EADDRINUSE`),
    );
  } finally {
    await a.close();
  }
});
