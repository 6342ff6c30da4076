// Leases side by side with Debian's etcd, one server at a time (fresh data dirs, loopback, etcd's Go client):
// puts/s without leases, then with LEASES live leases each holding a key, and RSS with MANY leases.
// usage: deno run -A scripts/lease_bench.ts [--leases 10000] [--many 100000] [--puts 10000]
import { parseArgs } from "node:util";
import { requireEtcdbench, rss, runEtcdbench, SERVERS, withServer } from "./bench_server.ts";

const { values } = parseArgs({
  options: {
    leases: { type: "string", default: "10000" },
    many: { type: "string", default: "100000" },
    puts: { type: "string", default: "10000" },
  },
});
const LEASES = Number(values.leases), MANY = Number(values.many), PUTS = String(values.puts);

/** Grants n leases of 10 minutes and leaves them (etcdbench keeps them alive for a second, then lets them be). */
async function grant(endpoint: string, n: number): Promise<void> {
  const r = await runEtcdbench(endpoint, [
    "lease-keepalive",
    "--leases",
    String(n),
    "--ttl",
    "600",
    "--duration",
    "1s",
    "--keep",
    "--clients",
    "32",
    "--timeout",
    "5m",
  ]);
  if (r.grant_errors > 0) throw new Error(`lease grants failed: ${JSON.stringify(r)}`);
}

/** One key per lease, through the JSON gateway: the lessor then holds every lease's key too. */
async function attachKeys(endpoint: string): Promise<void> {
  const res = await fetch(`http://${endpoint}/v3/lease/leases`, { method: "POST", body: "{}" });
  const ids: string[] = ((await res.json()).leases ?? []).map((l: { ID: string }) => l.ID);
  const put = (id: string) =>
    fetch(`http://${endpoint}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: btoa(`leased/${id}`), value: btoa("x"), lease: id }),
    }).then((r) => r.arrayBuffer());
  for (let i = 0; i < ids.length; i += 64) await Promise.all(ids.slice(i, i + 64).map(put));
}

async function puts(endpoint: string): Promise<number> {
  const r = await runEtcdbench(endpoint, ["put", "--total", PUTS, "--seq", "--clients", "50", "--conns", "5"]);
  return Math.round(r.rps);
}

function measure(name: string, command: string[]): Promise<Record<string, number>> {
  return withServer(command, async (endpoint, pid) => {
    const idleKiB = rss(pid);
    const putsBare = await puts(endpoint);
    await grant(endpoint, LEASES);
    await attachKeys(endpoint);
    const putsLeased = await puts(endpoint);
    await grant(endpoint, MANY - LEASES);
    const row = {
      putsBare,
      putsLeased,
      leasedOverBare: Number((putsLeased / putsBare).toFixed(2)),
      manyLeasesRssMiB: Math.round(rss(pid) / 1024),
      perLeaseB: Math.round((rss(pid) - idleKiB) * 1024 / MANY),
    };
    console.log(name, JSON.stringify(row));
    return row;
  });
}

requireEtcdbench("lease_bench");
const [etcd, detcd] = [await measure(...SERVERS[0]), await measure(...SERVERS[1])];
for (const k of ["putsBare", "putsLeased", "manyLeasesRssMiB", "perLeaseB"] as const) {
  console.log(`${k.padEnd(18)} ratio ${(detcd[k] / etcd[k]).toFixed(2)}`);
}
