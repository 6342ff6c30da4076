// Runs the raft cluster simulator over many seeds:
//   deno task sim --seeds 1000 [--from 0]     deno task sim --seed 42
import { runSeed } from "./simulator.ts";

function arg(name: string): number | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : undefined;
}

const single = arg("seed");
const from = single ?? arg("from") ?? 0;
const count = single !== undefined ? 1 : arg("seeds") ?? 1000;
const steps = arg("steps") ?? 1200;
const start = performance.now();
let failed = 0;
for (let s = from; s < from + count; s++) {
  const r = runSeed(s, steps);
  if (!r.ok) {
    failed++;
    console.log(`seed ${s} FAILED: ${r.error}`);
    console.log(`  replay: deno task sim --seed ${s}${steps !== 1200 ? ` --steps ${steps}` : ""}`);
  } else if (single !== undefined) {
    console.log(`seed ${s} ok`, r.stats);
  }
}
const secs = ((performance.now() - start) / 1000).toFixed(1);
console.log(`${count - failed}/${count} seeds passed (seeds ${from}..${from + count - 1}) in ${secs}s`);
if (failed > 0) Deno.exit(1);
