// A real browser (headless Chromium) on another origin talks to detcd with no proxy:
// Connect (JSON), gRPC-web (binary frames) and the JSON gateway, through CORS preflights.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, installed, startMember, tempDir } from "./harness.ts";

const chromium = installed("/usr/bin/chromium", "/usr/bin/chromium-browser");
const required = Deno.env.get("REQUIRE_BROWSER") === "1";

/** The page's script: each call the way a browser client library makes it, results into #out. */
function page(api: string): string {
  return `<!doctype html><pre id="out">pending</pre><script type="module">
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
} catch (e) {
  out.error = String(e);
}
document.getElementById("out").textContent = JSON.stringify(out);
</script>`;
}

Deno.test({
  name: "browser: Connect, gRPC-web and the gateway from another origin, no proxy",
  ignore: chromium === undefined && !required,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    if (chromium === undefined) throw new Error("chromium is not installed (apt-get install chromium)");
    const pagePort = await freePort();
    const origin = `http://127.0.0.1:${pagePort}`;
    const m = await startMember({ extraArgs: ["--cors", origin] });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: pagePort, onListen() {} },
      () => new Response(page(`http://${m.endpoint}`), { headers: { "content-type": "text/html" } }),
    );
    try {
      const run = await new Deno.Command(chromium, {
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
          "--virtual-time-budget=15000",
          "--dump-dom",
          `${origin}/`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dom = new TextDecoder().decode(run.stdout);
      const text = /<pre id="out">(.*?)<\/pre>/s.exec(dom)?.[1];
      assert(
        text !== undefined && text !== "pending",
        `the page did not finish:\n${dom}\n${new TextDecoder().decode(run.stderr)}`,
      );
      const out = JSON.parse(text.replaceAll("&quot;", '"').replaceAll("&amp;", "&"));
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
    } finally {
      await server.shutdown();
      await m.stop();
    }
  },
});
