// Summarises V8 .cpuprofile files (deno run --cpu-prof) for scripts/rpc_bench.sh --cpu-prof: self time by
// function and by area (protobuf-es, connect, node:http2 polyfill, rpc/ transport, idle).
// Usage: deno run -A scripts/rpc_bench_prof.ts file.cpuprofile... [--top N]

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const top = Deno.args.includes("--top") ? Number(Deno.args[Deno.args.indexOf("--top") + 1]) : 25;
const files = Deno.args.filter((a, i) => a.endsWith(".cpuprofile") && Deno.args[i - 1] !== "--top");
const byFn = new Map<string, number>();
const byArea = new Map<string, number>();
let total = 0;

function area(url: string, fn: string): string {
  if (fn === "(idle)" || fn === "(program)" || fn === "(garbage collector)") return fn;
  if (url.includes("@bufbuild")) return "protobuf-es";
  if (url.includes("@connectrpc")) return "connect";
  if (url.includes("/rpc/")) return "rpc/ transport";
  if (url.includes("http2")) return "node:http2 polyfill";
  if (url.startsWith("ext:") || url.startsWith("node:")) return "deno runtime (other)";
  return "other";
}

for (const f of files) {
  const p: Profile = JSON.parse(Deno.readTextFileSync(f));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  p.samples.forEach((id, i) => {
    const n = nodes.get(id)!;
    const dt = p.timeDeltas[i] ?? 0;
    const url = n.callFrame.url.replace(/^.*node_modules\/\.deno\//, "").replace(/^file:\/\/.*\/work\/main\//, "");
    const key = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + dt);
    const a = area(n.callFrame.url, n.callFrame.functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + dt);
    total += dt;
  });
}
const busy = total - (byArea.get("(idle)") ?? 0);
const pct = (v: number, of: number) => (100 * v / of).toFixed(1).padStart(5) + "%";
console.log(`total ${(total / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms\n\nby area (% of busy):`);
for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1])) if (k !== "(idle)") console.log(`${pct(v, busy)}  ${k}`);
console.log(`\ntop ${top} functions by self time (% of busy):`);
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).filter(([k]) => !k.startsWith("(idle)")).slice(0, top)) {
  console.log(`${pct(v, busy)}  ${k}`);
}
