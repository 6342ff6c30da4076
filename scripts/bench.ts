// deno task bench [--full]: side-by-side load against Debian's etcd 3.4 on loopback with
// ../shared/bench: raw gRPC through h2load (compare.sh), then etcd's own Go client (compare-go.sh on one member,
// compare-cluster.sh on two 3-member clusters; quick mode unless --full). All print ratios detcd / etcd.
import { V8_FLAGS } from "./v8_flags.ts";

const root = new URL("../", import.meta.url).pathname;
const bench = `${root}../shared/bench`;
try {
  Deno.statSync(`${bench}/compare.sh`);
} catch {
  console.error(`bench: ${bench}/compare.sh not found (the shared bench scripts sit beside the repo)`);
  Deno.exit(2);
}
// the same V8 flags as `deno task start` and the compiled binary
const server = [Deno.execPath(), "run", "-A", V8_FLAGS, `${root}main.ts`, "--log-level", "warn"];
const run = async (script: string, args: string[]) => {
  console.log(`== ${script} ${args.join(" ")}`);
  const r = await new Deno.Command("bash", { args: [`${bench}/${script}`, ...args, "--", ...server], cwd: root })
    .output();
  await Deno.stdout.write(r.stdout);
  await Deno.stderr.write(r.stderr);
  if (!r.success) Deno.exit(r.code);
};
await run("compare.sh", ["-n", "50000", "-c", "10", "-m", "10"]);
await run("compare-go.sh", Deno.args.includes("--full") ? [] : ["-q"]);
await run("compare-cluster.sh", Deno.args.includes("--full") ? [] : ["-q"]);
