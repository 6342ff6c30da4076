// A real browser (headless Chromium) on another origin talks to detcd with no proxy:
// Connect (JSON), gRPC-web (binary frames) and the JSON gateway, through CORS preflights, and a watch.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ctl, freePort, installed, noEtcdctl, startMember, tempDir, waitUntil, watchersAre } from "./harness.ts";

const chromium = installed("/usr/bin/chromium", "/usr/bin/chromium-browser");
const required = Deno.env.get("REQUIRE_BROWSER") === "1";

/** The page's script: each call the way a browser client library makes it; the results are posted back. */
function page(api: string): string {
  return `<!doctype html><script type="module">
const api = ${JSON.stringify(api)};
const enc = new TextEncoder();
const out = {};
const json = (path, body) => fetch(api + path, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
try {
  let r = await json("/etcdserverpb.KV/Put", { key: btoa("browser"), value: btoa("hello") });
  out.connectPut = { status: r.status, body: await r.json() };
  r = await json("/etcdserverpb.KV/Range", { key: btoa("browser") });
  out.connectRange = await r.json();
  r = await json("/etcdserverpb.KV/Put", { value: btoa("no key") });
  out.connectError = { status: r.status, body: await r.json() };

  // gRPC-web: a length-prefixed RangeRequest{key: "browser"}; the reply's last frame carries the trailers
  const key = enc.encode("browser");
  const msg = new Uint8Array([0x0a, key.length, ...key]);
  const frame = new Uint8Array(5 + msg.length);
  frame[4] = msg.length;
  frame.set(msg, 5);
  r = await fetch(api + "/etcdserverpb.KV/Range", {
    method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: frame });
  const buf = new Uint8Array(await r.arrayBuffer());
  const frames = [];
  for (let i = 0; i < buf.length;) {
    const len = new DataView(buf.buffer, buf.byteOffset + i + 1, 4).getUint32(0);
    frames.push({ flag: buf[i], body: buf.slice(i + 5, i + 5 + len) });
    i += 5 + len;
  }
  out.grpcWeb = {
    status: r.status,
    contentType: r.headers.get("content-type"),
    messages: frames.filter((f) => f.flag === 0).length,
    valueFound: new TextDecoder().decode(frames[0]?.body ?? new Uint8Array()).includes("hello"),
    trailers: new TextDecoder().decode(frames.find((f) => f.flag === 0x80)?.body ?? new Uint8Array()).trim(),
  };

  r = await fetch(api + "/v3/kv/range", { method: "POST", body: JSON.stringify({ key: btoa("browser") }) });
  out.gateway = await r.json();

  // Connect server-streaming (a browser can't stream a request): a watch on the prefix web/ from one enveloped
  // request; the test writes with etcdctl once the server has the watcher
  const watchReq = enc.encode(JSON.stringify({ createRequest: { key: btoa("web/"), rangeEnd: btoa("web0") } }));
  const env = new Uint8Array(5 + watchReq.length);
  new DataView(env.buffer).setUint32(1, watchReq.length);
  env.set(watchReq, 5);
  const stop = new AbortController();
  r = await fetch(api + "/etcdserverpb.Watch/Watch", {
    method: "POST", headers: { "content-type": "application/connect+json" }, body: env, signal: stop.signal });
  const reader = r.body.getReader();
  let pending = new Uint8Array(0);
  out.watch = { status: r.status, created: false, events: [] };
  while (out.watch.events.length < 2) {
    const { value, done } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(pending.length + value.length);
    joined.set(pending);
    joined.set(value, pending.length);
    pending = joined;
    while (pending.length >= 5) {
      const len = new DataView(pending.buffer, pending.byteOffset + 1, 4).getUint32(0);
      if (pending.length < 5 + len) break;
      const msg = JSON.parse(new TextDecoder().decode(pending.slice(5, 5 + len)));
      pending = pending.slice(5 + len);
      if (msg.created) out.watch.created = true;
      for (const e of msg.events ?? []) out.watch.events.push(atob(e.kv.key) + "=" + atob(e.kv.value));
    }
  }
  stop.abort();
} catch (e) {
  out.error = String(e);
}
// back to the page's own origin: the test reads it there
await fetch("/result", { method: "POST", body: JSON.stringify(out) });
</script>`;
}

Deno.test({
  name: "browser: Connect, gRPC-web, the gateway and a watch from another origin, no proxy",
  ignore: (chromium === undefined && !required) || noEtcdctl,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    if (chromium === undefined) throw new Error("chromium is not installed (apt-get install chromium)");
    const pagePort = await freePort();
    const origin = `http://127.0.0.1:${pagePort}`;
    const m = await startMember({ extraArgs: ["--cors", origin] });
    let result: string | undefined;
    const server = Deno.serve({ hostname: "127.0.0.1", port: pagePort, onListen() {} }, async (req) => {
      if (new URL(req.url).pathname !== "/result") {
        return new Response(page(`http://${m.endpoint}`), { headers: { "content-type": "text/html" } });
      }
      result = await req.text();
      return new Response("ok");
    });
    try {
      const browser = new Deno.Command(chromium, {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          `--user-data-dir=${await tempDir()}`,
          `${origin}/`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // the page's last step watches web/: write once the server has its watcher
      await watchersAre(m.endpoint, 1);
      await ctl(m.endpoint, "put", "web/a", "1");
      await ctl(m.endpoint, "put", "web/b", "2");
      let stderr = "";
      const drain = Promise.all([
        browser.stdout.pipeTo(new WritableStream()),
        (async () => {
          for await (const c of browser.stderr) stderr += new TextDecoder().decode(c);
        })(),
      ]);
      try {
        await waitUntil(() => result !== undefined, () => `the page's result; chromium said:\n${stderr}`, 60_000);
      } finally {
        browser.kill("SIGKILL");
        await browser.status;
        await drain;
      }
      const out = JSON.parse(result!);
      assertEquals(out.error, undefined);
      assertEquals(out.connectPut.status, 200);
      assert(Number(out.connectPut.body.header.revision) > 1);
      assertEquals(atob(out.connectRange.kvs[0].value), "hello");
      assertEquals(out.connectError, {
        status: 400,
        body: { code: "invalid_argument", message: "etcdserver: key is not provided" },
      });
      assertEquals(out.grpcWeb.status, 200);
      assertEquals(out.grpcWeb.contentType, "application/grpc-web+proto");
      assertEquals([out.grpcWeb.messages, out.grpcWeb.valueFound], [1, true]);
      assert(/grpc-status: ?0/.test(out.grpcWeb.trailers), out.grpcWeb.trailers);
      assertEquals(atob(out.gateway.kvs[0].value), "hello");
      assertEquals(out.watch, { status: 200, created: true, events: ["web/a=1", "web/b=2"] });
      await watchersAre(m.endpoint, 0);
    } finally {
      await server.shutdown();
      await m.stop();
    }
  },
});
