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
/**
 * compare-cluster.sh reads the catch-up's last key with `etcdctl get ... | head -1` under `set -o pipefail`: etcdctl
 * writes the key and a blank line in two writes, head may exit between them, and etcdctl's SIGPIPE (exit 141) then
 * ends the run (2 of 40 such pipelines here). The shared script is read-only, so a copy beside its etcdbench/ takes
 * `sed -n 1p`, which reads to the end; nothing else differs.
 */
function withoutSigpipe(script: string): { path: string; cleanup: () => void } {
  const text = Deno.readTextFileSync(`${bench}/${script}`);
  const fixed = text.replaceAll("2>/dev/null | head -1)", "2>/dev/null | sed -n 1p)");
  if (fixed === text) return { path: `${bench}/${script}`, cleanup: () => {} };
  const dir = Deno.makeTempDirSync({ prefix: "detcd-bench-" });
  Deno.writeTextFileSync(`${dir}/${script}`, fixed);
  Deno.symlinkSync(`${bench}/etcdbench`, `${dir}/etcdbench`);
  return { path: `${dir}/${script}`, cleanup: () => Deno.removeSync(dir, { recursive: true }) };
}
const run = async (script: string, args: string[]) => {
  console.log(`== ${script} ${args.join(" ")}`);
  const { path, cleanup } = withoutSigpipe(script);
  const r = await new Deno.Command("bash", { args: [path, ...args, "--", ...server], cwd: root }).output()
    .finally(cleanup);
  await Deno.stdout.write(r.stdout);
  await Deno.stderr.write(r.stderr);
  if (!r.success) Deno.exit(r.code);
};
await run("compare.sh", ["-n", "50000", "-c", "10", "-m", "10"]);
await run("compare-go.sh", Deno.args.includes("--full") ? [] : ["-q"]);
await run("compare-cluster.sh", Deno.args.includes("--full") ? [] : ["-q"]);
