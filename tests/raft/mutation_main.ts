// Checks that the simulator catches each known-bad raft variant (see mutations.ts):
//   deno run -A tests/raft/mutation_main.ts [--seeds 2000] [--from 0] [--only a,b]
//   deno run -A tests/raft/mutation_main.ts --only a --seed 17      (replay, full error)
import { hunt, mutantLib, MUTATIONS } from "./mutations.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const single = arg("seed");
const from = Number(single ?? arg("from") ?? 0);
const count = single !== undefined ? 1 : Number(arg("seeds") ?? 2000);
const only = arg("only")?.split(",");
let survivors = 0;
for (const m of MUTATIONS) {
  if (only && !only.includes(m.id)) continue;
  const start = performance.now();
  const h = hunt(m, await mutantLib(m), from, count);
  const secs = ((performance.now() - start) / 1000).toFixed(1);
  if (h.caught) {
    const err = single !== undefined ? h.caught.error! : h.caught.error!.split("\n")[0].slice(0, 120);
    console.log(
      `${m.id.padEnd(3)} caught   seed ${h.caught.seed} (${h.seeds} seeds, ${secs}s)  ${m.what}\n      ${err}`,
    );
  } else {
    survivors++;
    console.log(`${m.id.padEnd(3)} SURVIVED ${h.seeds} seeds (${secs}s)  ${m.what}`);
  }
}
if (survivors > 0) {
  console.log(`${survivors} mutation(s) survived`);
  Deno.exit(1);
}
