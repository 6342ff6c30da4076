// Records a sampling allocation profile of a running Deno process started with --inspect, through the inspector
// protocol, and prints the heaviest allocation sites. Sampled allocations include garbage collected during the run
// (includeObjectsCollectedByMajorGC/MinorGC), so this counts per-request garbage, not only what stays live.
// usage: deno run -A scripts/alloc_profile.ts [--port 9229] [--seconds 5] [--out profile.heapprofile] [--top 40]
//   [--heap]  (only print the target's memory usage and V8 heap spaces; with --gc, after a full GC)
import { parseArgs } from "node:util";
import { connectInspector, type Json } from "./inspector.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9229" },
    seconds: { type: "string", default: "5" },
    out: { type: "string", default: "profile.heapprofile" },
    top: { type: "string", default: "40" },
    heap: { type: "boolean", default: false },
    gc: { type: "boolean", default: false },
  },
});
const inspector = await connectInspector(values.port!);
const call = inspector.call;
const mib = (n: number) => (n / 1048576).toFixed(1);
if (values.heap) {
  if (values.gc) await call("HeapProfiler.collectGarbage");
  const { result } = await call("Runtime.evaluate", {
    expression: `import("node:v8").then((v8) => JSON.stringify({ mem: Deno.memoryUsage(),
      spaces: v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size, s.space_used_size]) }))`,
    awaitPromise: true,
  });
  const { mem, spaces } = JSON.parse(result.value);
  console.log(Object.entries(mem).map(([k, v]) => `${k} ${mib(v as number)}`).join(", ") + " MiB");
  for (const [name, size, used] of spaces) console.log(`  ${name}: ${mib(size)} MiB, ${mib(used)} used`);
  inspector.close();
  Deno.exit(0);
}
await call("HeapProfiler.enable");
await call("HeapProfiler.startSampling", {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
const { profile } = await call("HeapProfiler.stopSampling");
inspector.close();
await Deno.writeTextFile(values.out!, JSON.stringify(profile));

// self size per allocating function, heaviest first
const self = new Map<string, number>();
const walk = (n: Json) => {
  const cf = n.callFrame;
  const key = `${cf.functionName || "(anonymous)"} ${String(cf.url).split("/").slice(-2).join("/")}:${
    cf.lineNumber + 1
  }`;
  if (n.selfSize) self.set(key, (self.get(key) ?? 0) + n.selfSize);
  for (const c of n.children) walk(c);
};
walk(profile.head);
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`sampled allocations: ${mib(total)} MiB`);
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${(100 * v / total).toFixed(1).padStart(5)}% ${mib(v).padStart(7)} MiB  ${k}`);
}
