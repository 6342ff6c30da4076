// detcd's own HTTP/1.1 on the client port, through raw sockets: keep-alive, pipelining, chunked bodies both ways,
// Expect: 100-continue, HTTP/1.0, HEAD, and malformed requests refused with a status, not a hang.
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { startServer } from "./fixtures/server.ts";

/** Sends `input` (several writes when given several parts) and collects everything until the server closes. */
function exchange(port: number, parts: string[], until: (got: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (until(got)) s.end();
    });
    s.on("error", reject);
    s.on("close", () => resolve(got));
    s.on("connect", async () => {
      for (const p of parts) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
}

const responses = (got: string) => got.match(/HTTP\/1\.1 \d+/g) ?? [];
const put = (key: string) => JSON.stringify({ key: btoa(key), value: btoa("v") });

Deno.test({
  name: "http/1.1: keep-alive, pipelined requests, chunked request and response bodies, 100-continue",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const srv = await startServer();
    try {
      // two requests in one write, answered in order on one connection; the second asks to close
      const pipelined = await exchange(srv.port, [
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      ]);
      assertEquals(responses(pipelined), ["HTTP/1.1 200", "HTTP/1.1 200"]);
      assertMatch(pipelined, /content-length: 17\r\nconnection: keep-alive\r\n\r\n\{"health":"true"\}HTTP/);
      assertMatch(pipelined, /connection: close\r\n\r\n\{"health":"true"\}$/);

      // a chunked request body, split across writes, then Expect: 100-continue with a Content-Length body
      const body = put("k");
      const chunked = await exchange(srv.port, [
        "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        `${(5).toString(16)}\r\n${body.slice(0, 5)}\r\n`,
        `${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`,
        `POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n` +
        `Connection: close\r\n\r\n${body}`,
      ]);
      assertEquals(responses(chunked), ["HTTP/1.1 200", "HTTP/1.1 100", "HTTP/1.1 200"]);

      // a streaming response (the gateway's watch) goes out chunked as it is made
      const stream = await exchange(
        srv.port,
        [`POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}`],
        (got) => got.includes("\r\n\r\n") && /\r\n[0-9a-f]+\r\n\{/.test(got),
      );
      assertMatch(stream, /^HTTP\/1\.1 200 OK\r\n[^]*transfer-encoding: chunked\r\n[^]*\r\n\r\n[0-9a-f]+\r\n\{/);

      // HTTP/1.0: the response ends with the connection; HEAD: headers only
      const old = await exchange(srv.port, ["GET /health HTTP/1.0\r\n\r\n"]);
      assertMatch(old, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\n\{"health":"true"\}$/);
      const head = await exchange(srv.port, ["HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
      assertMatch(head, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n$/);
    } finally {
      await srv.close();
    }
  },
});

Deno.test({
  name: "http/1.1: malformed requests get a status and a closed connection",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const srv = await startServer();
    try {
      assertMatch(await exchange(srv.port, ["NONSENSE\r\n\r\n"]), /^HTTP\/1\.1 400 Bad Request\r\n/);
      assertMatch(
        await exchange(srv.port, [`GET /health HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`]),
        /^HTTP\/1\.1 431 /,
      );
      assertMatch(
        await exchange(srv.port, ["POST /v3/kv/put HTTP/1.1\r\nContent-Length: nope\r\n\r\n"]),
        /^HTTP\/1\.1 400 /,
      );
      assertMatch(
        await exchange(srv.port, ["POST /v3/kv/put HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"]),
        /^HTTP\/1\.1 501 /,
      );
      // the server keeps serving
      assertMatch(await exchange(srv.port, ["GET /health HTTP/1.0\r\n\r\n"]), /^HTTP\/1\.1 200 /);
    } finally {
      await srv.close();
    }
  },
});
