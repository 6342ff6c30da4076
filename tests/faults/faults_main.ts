// deno task faults [--duration SECONDS] [--seed S]: one seeded fault run against a 3-member detcd cluster; prints the
// report and exits 1 when a check fails (the report names the seed to replay).
import { parseArgs } from "node:util";
import { formatReport, runFaults } from "./run.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "60" },
    seed: { type: "string" },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const report = await runFaults({
  seed,
  durationMs: Number(values.duration) * 1000,
  log: (line) => console.log(line),
});
console.log(formatReport(report));
Deno.exit(report.passed ? 0 : 1);
