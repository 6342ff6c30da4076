// Records a CPU profile of a running Deno process started with --inspect, through the
// inspector protocol (Deno 2.9 has no --cpu-prof flag).
// usage: deno run -A scripts/cpu_profile.ts [--port 9229] [--seconds 5] [--out profile.cpuprofile] [--top 40]
import { parseArgs } from "node:util";
import { connectInspector, type Json } from "./inspector.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9229" },
    seconds: { type: "string", default: "5" },
    out: { type: "string", default: "profile.cpuprofile" },
    top: { type: "string", default: "40" },
  },
});
const inspector = await connectInspector(values.port!);
const call = inspector.call;
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 100 });
await call("Profiler.start");
await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
const { profile } = await call("Profiler.stop");
inspector.close();
await Deno.writeTextFile(values.out!, JSON.stringify(profile));

// self time per function, heaviest first
const self = new Map<string, number>();
const byId = new Map<number, Json>(profile.nodes.map((n: Json) => [n.id, n]));
const dt = profile.timeDeltas as number[];
(profile.samples as number[]).forEach((id, i) => {
  const cf = byId.get(id).callFrame;
  const key = `${cf.functionName || "(anonymous)"} ${String(cf.url).split("/").slice(-2).join("/")}:${
    cf.lineNumber + 1
  }`;
  self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
}
