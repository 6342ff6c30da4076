// deno task faults [--duration SECONDS] [--seed S]: one seeded fault run against a 3-member detcd cluster; prints the
// report and exits 1 when a check fails (the report names the seed to replay).
// deno task faults --mutants [--duration SECONDS] [--seed S]: each mutant (mutants.ts) on a copy of the tree, run the
// same way; exits 1 unless every one is caught.
import { parseArgs } from "node:util";
import { formatReport, runFaults } from "./run.ts";
import { MUTANTS, mutantTree } from "./mutants.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string" },
    seed: { type: "string" },
    mutants: { type: "boolean", default: false },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const log = (line: string) => console.log(line);

if (values.mutants) {
  const durationMs = Number(values.duration ?? "20") * 1000;
  const missed: string[] = [];
  for (const m of MUTANTS) {
    console.log(`\n== mutant ${m.name}: should be caught by ${m.expect}`);
    const tree = await mutantTree(m);
    try {
      const report = await runFaults({ seed, durationMs, mainTs: tree.mainTs, log });
      console.log(formatReport(report).split("\n").slice(0, 12).join("\n"));
      console.log(report.passed ? `NOT CAUGHT: ${m.name}` : `caught: ${m.name}`);
      if (report.passed) missed.push(m.name);
    } finally {
      await tree.remove();
    }
  }
  console.log(
    `\n${MUTANTS.length - missed.length} of ${MUTANTS.length} mutants caught${
      missed.length ? "; missed: " + missed.join(", ") : ""
    }`,
  );
  Deno.exit(missed.length === 0 ? 0 : 1);
}

const report = await runFaults({ seed, durationMs: Number(values.duration ?? "60") * 1000, log });
console.log(formatReport(report));
Deno.exit(report.passed ? 0 : 1);
