// Watch memory side by side with Debian's etcd: RSS per idle watcher (N watchers created by one raw HTTP/2 client
// over 10 gRPC streams; then N more, whose cost is the marginal one: the first N also pay one-time costs, code
// compiled and heaps grown), then the peak RSS while etcd's Go client fans puts out to N watchers (etcdbench watch,
// built by ../shared/bench/compare-go.sh into /tmp/etcdbench-build). One server at a time, fresh data dirs, loopback.
// usage: deno run -A scripts/watch_memory.ts [--watchers 10000] [--puts 2000]
import http2 from "node:http2";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { WatchRequestSchema } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { encodeFrame } from "../rpc/grpc_frame.ts";
import { requireEtcdbench, rss, runEtcdbench, SERVERS, withServer } from "./bench_server.ts";

const { values } = parseArgs({
  options: { watchers: { type: "string", default: "10000" }, puts: { type: "string", default: "2000" } },
});
const WATCHERS = Number(values.watchers), PUTS = Number(values.puts), STREAMS = 10;

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

function measure(name: string, command: string[]): Promise<Record<string, number>> {
  return withServer(command, async (endpoint, pid) => {
    const idle = rss(pid);
    const settled = async (n: number) => {
      while ((await watcherTotal(endpoint)) < n) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1000)); // let the creation's garbage go
      return rss(pid);
    };
    const w = openWatchers(endpoint, WATCHERS);
    const withWatchers = await settled(WATCHERS);
    const more = openWatchers(endpoint, WATCHERS);
    const withMore = await settled(2 * WATCHERS);
    w.close();
    more.close();
    while ((await watcherTotal(endpoint)) > 0) await new Promise((r) => setTimeout(r, 100));
    const before = rss(pid);
    let peak = before;
    const sampler = setInterval(() => peak = Math.max(peak, rss(pid)), 50);
    const r = await runEtcdbench(endpoint, [
      "watch",
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
    ]);
    clearInterval(sampler);
    const row = {
      idleKiB: idle,
      perIdleWatcherB: Math.round((withWatchers - idle) * 1024 / WATCHERS),
      perMoreWatcherB: Math.round((withMore - withWatchers) * 1024 / WATCHERS),
      loadPeakGrowthMiB: Math.round((peak - before) / 1024),
      putsPerS: Math.round(r.put_rps),
      eventsPerS: Math.round(r.events_per_s),
      lost: r.missing + r.duplicate + r.out_of_order,
    };
    console.log(name, JSON.stringify(row));
    return row;
  });
}

requireEtcdbench("watch_memory");
const [etcd, detcd] = [await measure(...SERVERS[0]), await measure(...SERVERS[1])];
for (const k of ["perIdleWatcherB", "perMoreWatcherB", "loadPeakGrowthMiB", "putsPerS", "eventsPerS"] as const) {
  console.log(`${k.padEnd(18)} ratio ${(detcd[k] / etcd[k]).toFixed(2)}`);
}
