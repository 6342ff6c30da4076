// Backups side by side with Debian's etcd, one server at a time (fresh data dirs, loopback): KEYS keys loaded with
// etcd's Go client, then `etcdctl snapshot save` ROUNDS times: its time (median, best), the file's size, and the
// server's RSS before the first save and after the last (detcd builds the bbolt file as it streams it).
// usage: deno run -A scripts/backup_bench.ts [--keys 100000] [--rounds 5]
import { parseArgs } from "node:util";
import { requireEtcdbench, rss, runEtcdbench, SERVERS, withServer } from "./bench_server.ts";

const { values } = parseArgs({
  options: { keys: { type: "string", default: "100000" }, rounds: { type: "string", default: "5" } },
});
const KEYS = values.keys!, ROUNDS = Number(values.rounds);

async function save(endpoint: string, path: string): Promise<number> {
  const t0 = performance.now();
  const r = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, "snapshot", "save", path],
    env: { ETCDCTL_API: "3" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`snapshot save: ${new TextDecoder().decode(r.stderr)}`);
  return performance.now() - t0;
}

function measure(name: string, command: string[]): Promise<Record<string, number>> {
  return withServer(command, async (endpoint, pid) => {
    await runEtcdbench(endpoint, ["load", "--keys", KEYS, "--batch", "100", "--timeout", "5m"]);
    const dir = await Deno.makeTempDir({ prefix: "bench-backup-" });
    try {
      const before = rss(pid);
      const times: number[] = [];
      for (let i = 0; i < ROUNDS; i++) times.push(await save(endpoint, `${dir}/backup.db`));
      times.sort((a, b) => a - b);
      const row = {
        medianMs: Math.round(times[times.length >> 1]),
        bestMs: Math.round(times[0]),
        fileMiB: Number(((await Deno.stat(`${dir}/backup.db`)).size / 2 ** 20).toFixed(1)),
        rssBeforeMiB: Math.round(before / 1024),
        rssAfterMiB: Math.round(rss(pid) / 1024),
      };
      console.log(name, JSON.stringify(row));
      return row;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

requireEtcdbench("backup_bench");
const [etcd, detcd] = [await measure(...SERVERS[0]), await measure(...SERVERS[1])];
for (const k of ["medianMs", "bestMs", "fileMiB", "rssBeforeMiB", "rssAfterMiB"] as const) {
  console.log(`${k.padEnd(13)} ratio ${(detcd[k] / etcd[k]).toFixed(2)}`);
}
