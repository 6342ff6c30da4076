// The quick seeded fault run (issue 23): 20 s of kill -9s and pauses on a 3-member cluster under the register
// workload; every check must hold. `deno task faults --duration 600` is the long form.
import { equal, ok } from "node:assert/strict";
import { formatReport, runFaults } from "./run.ts";

Deno.test({
  name: "faults: a seeded run of kills and pauses loses nothing, stays linearizable and converges",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const report = await runFaults({ seed: 1, durationMs: 20_000 });
    const text = formatReport(report);
    ok(report.passed, text);
    // the run did what it claims: faults of both kinds (seed 1's schedule), work answered and refused around them
    ok(report.faults.some((f) => f.kind === "kill") && report.faults.some((f) => f.kind === "pause"), text);
    ok(report.faults.length >= 4, text);
    ok(report.counts.ok > 1000 && report.counts.notApplied > 0, text);
    equal(report.lost.length, 0, text);
  },
});
