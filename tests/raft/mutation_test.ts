// The simulator must keep its teeth: each of the most important known-bad raft variants
// (mutations.ts) is caught within a bounded seed budget. The full set runs in mutation_main.ts.
import { hunt, mutantLib, MUTATIONS } from "./mutations.ts";

const BUDGET = 1000;

for (const id of ["a", "b", "d", "i"]) {
  const m = MUTATIONS.find((m) => m.id === id)!;
  Deno.test(`mutation ${id} (${m.what}) is caught by the simulator`, async () => {
    const h = hunt(m, await mutantLib(m), 0, BUDGET);
    if (!h.caught) throw new Error(`survived ${BUDGET} seeds: deno run -A tests/raft/mutation_main.ts --only ${id}`);
  });
}
