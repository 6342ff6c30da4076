// The quick seeded fault run (issue 23): 20 s of faults on a 3-member cluster under the register workload; every check
// must hold. `deno task faults --duration 600` is the long form.
import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import { formatReport, runFaults } from "./run.ts";

Deno.test({
  name: "faults: a seeded run of kills, pauses, link faults and membership churn loses nothing, keeps every watch " +
    "whole, stays linearizable and converges",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const report = await runFaults({ seed: 59, durationMs: 20_000 });
    const text = formatReport(report);
    ok(report.passed, text);
    // the run did what it claims: seed 59's schedule starts with these (the leader the target of each, when one is
    // found: the replace removes and wipes it), and work was answered and refused around them
    assertEquals(report.faults.slice(0, 4).map((f) => f.kind), ["lossy", "replace", "pause", "kill"], text);
    ok(report.counts.ok > 1000 && report.counts.notApplied > 0, text);
    // a watcher on each member saw the whole history, the killed member's one after resuming
    ok(report.watch.events > 3 * 1000 && report.watch.resumptions > 0, text);
    // the store was compacted under the watchers (a laggard among them) and the history collected around it
    ok(report.compactions > 0, text);
    equal(report.lost.length, 0, text);
  },
});
