// Watch memory side by side with Debian's etcd: RSS per idle watcher (N watchers created by one raw HTTP/2 client
// over 10 gRPC streams), then the peak RSS while etcd's Go client fans puts out to N watchers (etcdbench watch, built
// by ../shared/bench/compare-go.sh into /tmp/etcdbench-build). One server at a time, fresh data dirs, loopback.
// usage: deno run -A scripts/watch_memory.ts [--watchers 10000] [--puts 2000]
import http2 from "node:http2";
import { createServer } from "node:net";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { WatchRequestSchema } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { encodeFrame } from "../rpc/grpc_frame.ts";
import { V8_FLAGS } from "./v8_flags.ts";

const { values } = parseArgs({
  options: { watchers: { type: "string", default: "10000" }, puts: { type: "string", default: "2000" } },
});
const WATCHERS = Number(values.watchers), PUTS = Number(values.puts), STREAMS = 10;
const root = new URL("../", import.meta.url).pathname;
const etcdbench = "/tmp/etcdbench-build/etcdbench";

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** VmRSS in KiB of pid and its children (deno runs the server itself, etcd has none). */
function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

async function waitReady(endpoint: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://${endpoint}/health`)).ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${endpoint} did not get healthy`);
}

async function watcherTotal(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  return Number(/^etcd_debugging_mvcc_watcher_total (\S+)$/m.exec(text)?.[1] ?? 0);
}

/** N idle watchers over STREAMS HTTP/2 connections; close() ends them. */
function openWatchers(endpoint: string, n: number): { close(): void } {
  const enc = new TextEncoder();
  const req = toBinary(
    WatchRequestSchema,
    create(WatchRequestSchema, {
      requestUnion: { case: "createRequest", value: { key: enc.encode("mem/"), rangeEnd: enc.encode("mem0") } },
    }),
  );
  const frame = encodeFrame(req);
  const sessions = Array.from({ length: STREAMS }, () => {
    const session = http2.connect(`http://${endpoint}`);
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/etcdserverpb.Watch/Watch",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("data", () => {});
    stream.on("error", () => {});
    for (let i = 0; i < n / STREAMS; i++) stream.write(frame);
    return session;
  });
  return { close: () => sessions.forEach((s) => s.destroy()) };
}

async function measure(name: string, command: string[]): Promise<Record<string, number>> {
  const [client, peer] = [await freePort(), await freePort()];
  const dir = await Deno.makeTempDir({ prefix: "watch-memory-" });
  const child = new Deno.Command(command[0], {
    args: [
      ...command.slice(1),
      "--name=m",
      `--data-dir=${dir}/m.etcd`,
      `--listen-client-urls=http://127.0.0.1:${client}`,
      `--advertise-client-urls=http://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=m=http://127.0.0.1:${peer}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const endpoint = `127.0.0.1:${client}`;
  try {
    await waitReady(endpoint);
    const idle = rss(child.pid);
    const w = openWatchers(endpoint, WATCHERS);
    while ((await watcherTotal(endpoint)) < WATCHERS) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000)); // let the creation's garbage go
    const withWatchers = rss(child.pid);
    w.close();
    while ((await watcherTotal(endpoint)) > 0) await new Promise((r) => setTimeout(r, 100));
    const before = rss(child.pid);
    let peak = before;
    const bench = new Deno.Command(etcdbench, {
      args: [
        "watch",
        "--endpoints",
        endpoint,
        "--watchers",
        String(WATCHERS),
        "--streams",
        String(STREAMS),
        "--puts",
        String(PUTS),
        "--clients",
        "10",
        "--conns",
        "4",
        "--quiet",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const sampler = setInterval(() => peak = Math.max(peak, rss(child.pid)), 50);
    const out = new TextDecoder().decode((await bench.output()).stdout).trim().split("\n").pop()!;
    clearInterval(sampler);
    const r = JSON.parse(out);
    const row = {
      idleKiB: idle,
      perIdleWatcherB: Math.round((withWatchers - idle) * 1024 / WATCHERS),
      loadPeakGrowthMiB: Math.round((peak - before) / 1024),
      putsPerS: Math.round(r.put_rps),
      eventsPerS: Math.round(r.events_per_s),
      lost: r.missing + r.duplicate + r.out_of_order,
    };
    console.log(name, JSON.stringify(row));
    return row;
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

try {
  Deno.statSync(etcdbench);
} catch {
  console.error(`watch_memory: ${etcdbench} is missing; run ../shared/bench/compare-go.sh once to build it`);
  Deno.exit(2);
}
const etcd = await measure("etcd ", ["etcd"]);
const detcd = await measure("detcd", [Deno.execPath(), "run", "-A", V8_FLAGS, `${root}main.ts`, "--log-level=warn"]);
for (const k of ["perIdleWatcherB", "loadPeakGrowthMiB", "putsPerS", "eventsPerS"] as const) {
  console.log(`${k.padEnd(18)} ratio ${(detcd[k] / etcd[k]).toFixed(2)}`);
}
