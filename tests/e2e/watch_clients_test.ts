// Watch through the clients applications use: the etcd3 npm client (gRPC, many watchers on one stream, a server
// restart in the middle), and Connect / gRPC-web over HTTP/1.1, where a watch is one request and a stream of
// responses (what a browser can do).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { create, type DescService } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Etcd3, type IKeyValue } from "etcd3";
import { Watch, type WatchRequest, WatchRequestSchema, type WatchResponse } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { watchHistory } from "../faults/watcher.ts";
import { ctl, noEtcdctl, spawnEtcdctl, startMember, tempDir, waitUntil, watchersAre } from "./harness.ts";

const opts = { ignore: noEtcdctl, sanitizeResources: false, sanitizeOps: false };
const dec = new TextDecoder();

Deno.test({
  name: "watch clients: etcd3 npm watchers on keys and prefixes, one from an old revision, across a server restart",
  ...opts,
  fn: async () => {
    const dataDir = `${await tempDir()}/n.etcd`;
    let m = await startMember({ dataDir });
    const client = new Etcd3({ hosts: m.endpoint });
    const seen = new Map<string, string[]>();
    const record = (name: string) => (kv: IKeyValue) => {
      const list = seen.get(name) ?? [];
      list.push(`${kv.key.toString()}=${kv.value.toString()}@${kv.mod_revision}`);
      seen.set(name, list);
    };
    try {
      await client.put("app/a").value("0"); // revision 2
      const key = await client.watch().key("app/a").create();
      const prefix = await client.watch().prefix("app/").create();
      const old = await client.watch().key("app/a").startRevision("2").create();
      key.on("put", record("key"));
      prefix.on("put", record("prefix"));
      prefix.on("delete", record("prefix"));
      old.on("put", record("old"));
      await client.put("app/a").value("1");
      await client.put("app/b").value("2");
      await client.delete().key("app/b");
      await waitUntil(() => seen.get("prefix")?.length === 3, () => JSON.stringify([...seen]));
      // the server goes away and comes back: the client resumes each watcher after the last revision it saw
      assertEquals(await m.stop(), 0);
      m = await startMember({ dataDir, clientPort: m.clientPort });
      await ctl(m.endpoint, "put", "app/a", "after-restart");
      await waitUntil(
        () => ["key", "prefix", "old"].every((n) => seen.get(n)?.some((e) => e.includes("after-restart"))),
        () => JSON.stringify([...seen]),
      );
      assertEquals(seen.get("key"), ["app/a=1@3", "app/a=after-restart@6"]);
      assertEquals(seen.get("prefix"), ["app/a=1@3", "app/b=2@4", "app/b=@5", "app/a=after-restart@6"]);
      assertEquals(seen.get("old"), ["app/a=0@2", "app/a=1@3", "app/a=after-restart@6"]);
      await Promise.all([key.cancel(), prefix.cancel(), old.cancel()]);
      await watchersAre(m.endpoint, 0);
    } finally {
      client.close();
      await m.stop();
    }
  },
});

/** Watch as a server-streaming method: one request, then responses (bidi needs HTTP/2, browsers can't stream). */
const watchMethod = { ...Watch.method.watch, methodKind: "server_streaming" };
const HalfDuplexWatch = { ...Watch, methods: [watchMethod], method: { watch: watchMethod } } as unknown as DescService;
type HalfDuplexClient = { watch(req: unknown, o: { signal: AbortSignal }): AsyncIterable<WatchResponse> };

Deno.test({
  name: "watch clients: Connect and gRPC-web over HTTP/1.1 stream a watch from one request; leaving frees it",
  ...opts,
  fn: async () => {
    const m = await startMember();
    try {
      const baseUrl = `http://${m.endpoint}`;
      for (
        const transport of [
          createConnectTransport({ baseUrl, httpVersion: "1.1" }),
          createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
        ]
      ) {
        const client = createClient(HalfDuplexWatch, transport) as unknown as HalfDuplexClient;
        const abort = new AbortController();
        const events: string[] = [];
        const done = (async () => {
          const req = { requestUnion: { case: "createRequest", value: { key: new TextEncoder().encode("web/") } } };
          for await (const r of client.watch(req, { signal: abort.signal })) {
            for (const e of r.events) events.push(`${dec.decode(e.kv!.key)}=${dec.decode(e.kv!.value)}`);
          }
        })().catch((e) => {
          if (!abort.signal.aborted) throw e;
        });
        await watchersAre(m.endpoint, 1);
        await ctl(m.endpoint, "put", "web/", "one");
        await ctl(m.endpoint, "put", "web/", "two");
        await waitUntil(() => events.length === 2, () => events.join());
        assertEquals(events, ["web/=one", "web/=two"]);
        abort.abort();
        await done;
        await watchersAre(m.endpoint, 0);
      }
    } finally {
      await m.stop();
    }
  },
});

Deno.test({
  name: "watch clients: etcdctl make-mirror copies one detcd member's prefix into another, then follows it live",
  ...opts,
  fn: async () => {
    const [src, dst] = [await startMember(), await startMember()];
    const mirror = spawnEtcdctl(src.endpoint, [
      "make-mirror",
      "--prefix",
      "src/",
      "--dest-prefix",
      "dst/",
      dst.endpoint,
    ]);
    try {
      for (let i = 0; i < 20; i++) await ctl(src.endpoint, "put", `src/k${i}`, `v${i}`);
      await watchersAre(src.endpoint, 1); // the base copy is done and the mirror follows the source
      await ctl(src.endpoint, "put", "src/k0", "changed");
      await ctl(src.endpoint, "del", "src/k1");
      await ctl(src.endpoint, "put", "other", "not mirrored");
      const want = Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 1)
        .map((i) => `dst/k${i}\n${i === 0 ? "changed" : `v${i}`}\n`).sort().join("");
      let got = "";
      await waitUntil(async () => (got = await ctl(dst.endpoint, "get", "dst/", "--prefix")) === want, () => got);
      assertEquals(await ctl(dst.endpoint, "get", "other"), "");
    } finally {
      await mirror.stop();
      await Promise.all([src.stop(), dst.stop()]);
    }
  },
});

Deno.test({
  name: "watch clients: Connect over HTTP/2 is bidirectional: create, events, then cancel on the same stream",
  ...opts,
  fn: async () => {
    const m = await startMember();
    const transport = createConnectTransport({ baseUrl: `http://${m.endpoint}`, httpVersion: "2" });
    const client = createClient(Watch, transport);
    // the request side: an async iterable the test feeds as it goes
    const queued: WatchRequest[] = [];
    let wake: (() => void) | undefined, ended = false;
    const send = (r: WatchRequest) => {
      queued.push(r);
      wake?.();
    };
    async function* requests() {
      for (;;) {
        while (queued.length > 0) yield queued.shift()!;
        if (ended) return;
        await new Promise<void>((resolve) => wake = resolve);
      }
    }
    const abort = new AbortController();
    const seen: string[] = [];
    try {
      const responses = client.watch(requests(), { signal: abort.signal });
      send(create(WatchRequestSchema, {
        requestUnion: {
          case: "createRequest",
          value: { key: new TextEncoder().encode("h2/"), rangeEnd: new TextEncoder().encode("h20") },
        },
      }));
      const reading = (async () => {
        for await (const r of responses) {
          if (r.created) seen.push(`created ${r.watchId}`);
          for (const e of r.events) seen.push(`${dec.decode(e.kv!.key)}=${dec.decode(e.kv!.value)}`);
          if (r.canceled) {
            seen.push(`canceled ${r.watchId}`);
            return;
          }
        }
      })();
      await watchersAre(m.endpoint, 1);
      await ctl(m.endpoint, "put", "h2/a", "1");
      await waitUntil(() => seen.length === 2, () => seen.join());
      send(create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: 0n } } }));
      await reading;
      assertEquals(seen, ["created 0", "h2/a=1", "canceled 0"]);
      await watchersAre(m.endpoint, 0);
    } finally {
      // the client first: Deno's node:http2 client can abort on a server's GOAWAY (denoland/deno#36788)
      ended = true;
      wake?.();
      abort.abort();
      await m.stop();
    }
  },
});

Deno.test({
  name: "gateway watch from revision 1 over two-key transactions: the history's catch-up is not stalled by 'created'",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const m = await startMember();
    try {
      const post = (path: string, body: unknown) =>
        fetch(`http://${m.endpoint}${path}`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
      // 1200 events in 600 revisions: the first catch-up batch is larger than a stream takes while anything is queued
      for (let i = 0; i < 600; i++) {
        const put = (k: string) => ({ request_put: { key: btoa(k), value: btoa(`${i}`) } });
        await post("/v3/kv/txn", { success: [put("a"), put("b")] });
      }
      // every key from revision 1: throws when the watch does not reach revision 601 in 10 s
      const events = await watchHistory(m.endpoint, 1, 601, 10_000);
      assertEquals([events.length, events.at(-1)?.modRevision], [1200, 601]);
    } finally {
      await m.kill();
    }
  },
});
