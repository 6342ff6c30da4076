// Runs the cluster simulator over 2000 seeds; see sim_main.ts to run more or replay one.
import { runSeed } from "./simulator.ts";

const SEEDS = 2000;

Deno.test(`simulator: ${SEEDS} seeds keep safety and liveness`, () => {
  const failures: string[] = [];
  let applied = 0;
  let elections = 0;
  let confChanges = 0;
  for (let seed = 0; seed < SEEDS; seed++) {
    const r = runSeed(seed);
    applied += r.stats.applied;
    elections += r.stats.elections;
    confChanges += r.stats.confChanges;
    if (!r.ok) failures.push(`seed ${seed}: ${r.error}\n  replay: deno task sim --seed ${seed}`);
  }
  if (failures.length > 0) throw new Error(`${failures.length} seeds failed:\n${failures.slice(0, 5).join("\n")}`);
  // Guard against a simulator that passes by doing nothing.
  if (applied < SEEDS * 20 || elections < SEEDS || confChanges < SEEDS) {
    throw new Error(`simulation too quiet: applied ${applied}, elections ${elections}, conf changes ${confChanges}`);
  }
});
