// What the side-by-side scripts (watch_memory.ts, lease_bench.ts) share: one server at a time, etcd's flags, a fresh
// data dir on loopback ports, its RSS, and etcd's Go client (etcdbench, built by ../shared/bench/compare-go.sh).
import { createServer } from "node:net";
import { V8_FLAGS } from "./v8_flags.ts";

export const etcdbench = "/tmp/etcdbench-build/etcdbench";
const root = new URL("../", import.meta.url).pathname;

/** The two servers compared: Debian's etcd, then detcd as `deno task start` runs it. */
export const SERVERS: [string, string[]][] = [
  ["etcd ", ["etcd"]],
  ["detcd", [Deno.execPath(), "run", "-A", V8_FLAGS, `${root}main.ts`, "--log-level=warn"]],
];

export function requireEtcdbench(script: string): void {
  try {
    Deno.statSync(etcdbench);
  } catch {
    console.error(`${script}: ${etcdbench} is missing; run ../shared/bench/compare-go.sh once to build it`);
    Deno.exit(2);
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** VmRSS in KiB of pid (deno runs the server itself, etcd has no children). */
export function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

async function waitReady(endpoint: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://${endpoint}/health`)).ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${endpoint} did not get healthy`);
}

/** Runs fn against a fresh single-member server started with `command` and etcd's flags; stops it after. */
export async function withServer<T>(
  command: string[],
  fn: (endpoint: string, pid: number) => Promise<T>,
): Promise<T> {
  const [client, peer] = [await freePort(), await freePort()];
  const dir = await Deno.makeTempDir({ prefix: "bench-server-" });
  const child = new Deno.Command(command[0], {
    args: [
      ...command.slice(1),
      "--name=m",
      `--data-dir=${dir}/m.etcd`,
      `--listen-client-urls=http://127.0.0.1:${client}`,
      `--advertise-client-urls=http://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=m=http://127.0.0.1:${peer}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const endpoint = `127.0.0.1:${client}`;
  try {
    await waitReady(endpoint);
    return await fn(endpoint, child.pid);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** etcdbench SUBCOMMAND with flags, --quiet; its JSON summary. */
export async function runEtcdbench(endpoint: string, args: string[]): Promise<Record<string, number>> {
  const out = await new Deno.Command(etcdbench, {
    args: [args[0], "--endpoints", endpoint, "--quiet", ...args.slice(1)],
    stdout: "piped",
    stderr: "null",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}
