// Real-process test harness: runs detcd (main.ts) as a child process on loopback ports
// with a temp data dir, and the real etcdctl 3.4 against it.
import { createServer } from "node:net";

export const repoRoot = new URL("../../", import.meta.url).pathname;

/** The first of paths that is a file: where a Debian package put a program. */
export function installed(...paths: string[]): string | undefined {
  return paths.find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

const etcdctlPath = installed("/usr/bin/etcdctl", "/usr/local/bin/etcdctl");

/** etcdctl tests run where etcdctl exists; with REQUIRE_ETCDCTL=1 (CI) they fail instead of skipping. */
export const noEtcdctl = etcdctlPath === undefined && Deno.env.get("REQUIRE_ETCDCTL") !== "1";

/** Ports freePort handed out: the OS may offer a just-released port again, and two asked in a row can be one. */
const handedOut = new Set<number>();

/**
 * Where freePort looks: the widest span outside the kernel's ephemeral range, which the tests' own client connections
 * (etcdctl, fetch, peers dialing) take their local ports from, so that a port found free there could be a
 * connection's by the time a member binds it (EADDRINUSE, seen in CI). Undefined where there is no such span: then
 * the kernel picks.
 */
const portSpan = ((): [number, number] | undefined => {
  let lo = 32768, hi = 60999;
  try {
    [lo, hi] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/).map(Number);
  } catch { /* not Linux: the usual range */ }
  const below: [number, number] = [10000, lo], above: [number, number] = [hi + 1, 65536];
  const wide = below[1] - below[0] >= above[1] - above[0] ? below : above;
  return wide[1] - wide[0] >= 2000 ? wide : undefined;
})();

/** The port a listener could take on 127.0.0.1 (`port`, or the kernel's pick for 0), released; undefined if taken. */
function canListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(undefined));
    srv.listen(port, "127.0.0.1", () => {
      const got = (srv.address() as { port: number }).port;
      srv.close(() => resolve(got));
    });
  });
}

/** A loopback port nothing listens on, none handed out before (see portSpan). */
export async function freePort(): Promise<number> {
  for (;;) {
    const want = portSpan === undefined ? 0 : portSpan[0] + Math.floor(Math.random() * (portSpan[1] - portSpan[0]));
    if (handedOut.has(want)) continue;
    const port = await canListen(want);
    if (port === undefined || handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export interface Member {
  clientPort: number;
  peerPort: number;
  dataDir: string;
  endpoint: string;
  child: Deno.ChildProcess;
  /** Everything the process wrote to stderr so far (its JSON log lines). */
  log(): string;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
}

/** Members still running when the test module ends (a failed test) are killed, not left behind. */
const running = new Set<Deno.ChildProcess>();
/** The temp dirs tests made (members' data dirs: tens of MiB each) go when the module ends, pass or fail. */
const tempDirs = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const c of running) {
    try {
      c.kill("SIGKILL");
    } catch { /* already gone */ }
  }
  for (const d of tempDirs) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* already gone */ }
  }
});

export interface StartOptions {
  dataDir?: string;
  clientPort?: number;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Replaces the generated flags entirely (e.g. a lone --config-file); ports and data dir must match it. */
  args?: string[];
  /** Another build's main.ts (a mutant's copy of the tree); it runs in that tree. Default: this tree's. */
  mainTs?: string;
  /** Resolve as soon as the process exits instead of waiting for readiness (for start failures). */
  expectExit?: boolean;
  /** Resolve once started, without waiting for readiness (a member that cannot be ready yet). */
  noWait?: boolean;
  /** Run without FFI (--deny-ffi): the member then reads the files it would map (see wal/mapped_file.ts). */
  denyFfi?: boolean;
}

/** A member of a loopback cluster: its name, data dir and ports. */
export interface ClusterNode {
  name: string;
  dataDir: string;
  client: number;
  peer: number;
}

/** The flags etcd takes for member `n` of a loopback cluster (`cluster`: its --initial-cluster). */
export function clusterFlags(n: ClusterNode, cluster: string, token: string): string[] {
  return [
    `--name=${n.name}`,
    `--data-dir=${n.dataDir}`,
    `--listen-client-urls=http://127.0.0.1:${n.client}`,
    `--advertise-client-urls=http://127.0.0.1:${n.client}`,
    `--listen-peer-urls=http://127.0.0.1:${n.peer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${n.peer}`,
    `--initial-cluster=${cluster}`,
    `--initial-cluster-token=${token}`,
  ];
}

export async function tempDir(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "detcd-test-" });
  tempDirs.add(d);
  return d;
}

export async function startMember(opts: StartOptions = {}): Promise<Member> {
  const dataDir = opts.dataDir ?? `${await tempDir()}/m.etcd`;
  const clientPort = opts.clientPort ?? await freePort();
  const peerPort = await freePort();
  const flags = opts.args ?? [
    "--name",
    "m1",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    `http://127.0.0.1:${clientPort}`,
    "--advertise-client-urls",
    `http://127.0.0.1:${clientPort}`,
    "--listen-peer-urls",
    `http://127.0.0.1:${peerPort}`,
    "--initial-advertise-peer-urls",
    `http://127.0.0.1:${peerPort}`,
    "--initial-cluster",
    `m1=http://127.0.0.1:${peerPort}`,
    ...(opts.extraArgs ?? []),
  ];
  const mainTs = opts.mainTs ?? `${repoRoot}main.ts`;
  const args = ["run", "-A", ...(opts.denyFfi ? ["--deny-ffi"] : []), mainTs, ...flags];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: mainTs.slice(0, mainTs.lastIndexOf("/") + 1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...(opts.env ?? {}) },
  }).spawn();
  let stderr = "";
  let stdout = "";
  const decoder = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
    for await (const chunk of s) into(decoder.decode(chunk, { stream: true }));
  };
  const pumps = Promise.all([pump(child.stderr, (t) => stderr += t), pump(child.stdout, (t) => stdout += t)]);
  let exited = false;
  running.add(child);
  const status = child.status.then(async (s) => {
    exited = true;
    running.delete(child);
    await pumps;
    return s;
  });
  const member: Member = {
    clientPort,
    peerPort,
    dataDir,
    endpoint: `127.0.0.1:${clientPort}`,
    child,
    log: () => stderr + stdout,
    stop: async () => {
      if (!exited) child.kill("SIGTERM");
      return (await status).code;
    },
    kill: async () => {
      if (!exited) child.kill("SIGKILL");
      await status;
    },
  };
  if (opts.expectExit) {
    await status;
    return member;
  }
  if (opts.noWait) return member;
  const deadline = Date.now() + 30_000;
  while (!stderr.includes("ready to serve client requests") && !stdout.includes("ready to serve client requests")) {
    if (exited) throw new Error(`detcd exited before it was ready:\n${member.log()}`);
    if (Date.now() > deadline) {
      await member.kill();
      throw new Error(`detcd was not ready in 30s:\n${member.log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return member;
}

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function etcdctl(endpoint: string, args: string[], stdin?: string): Promise<CmdResult> {
  if (etcdctlPath === undefined) throw new Error("etcdctl is not installed (apt-get install etcd-client)");
  const child = new Deno.Command(etcdctlPath, {
    args: [`--endpoints=${endpoint}`, "--command-timeout=10s", ...args],
    env: { ETCDCTL_API: "3" },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** etcdctl that must succeed; returns its stdout. */
export async function ctl(endpoint: string, ...args: string[]): Promise<string> {
  const r = await etcdctl(endpoint, args);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** An etcdctl left running (watch, watch -i, make-mirror): its output so far, its input, and a stop. */
export interface BackgroundCtl {
  stdout(): string;
  stderr(): string;
  /** Writes a line to its stdin (started with input: true). */
  writeLine(line: string): Promise<void>;
  /** Resolves with the exit code once it has exited on its own or been stopped. */
  readonly exited: Promise<number>;
  /** SIGTERM unless it has exited; resolves with the exit code. */
  stop(): Promise<number>;
}

export function spawnEtcdctl(endpoint: string, args: string[], opts: { input?: boolean } = {}): BackgroundCtl {
  if (etcdctlPath === undefined) throw new Error("etcdctl is not installed (apt-get install etcd-client)");
  const child = new Deno.Command(etcdctlPath, {
    args: [`--endpoints=${endpoint}`, ...args],
    env: { ETCDCTL_API: "3" },
    stdin: opts.input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.add(child);
  let out = "", err = "", done = false;
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
    for await (const chunk of s) into(dec.decode(chunk, { stream: true }));
  };
  const pumps = Promise.all([pump(child.stdout, (t) => out += t), pump(child.stderr, (t) => err += t)]);
  const exited = child.status.then(async (s) => {
    done = true;
    running.delete(child);
    await pumps;
    return s.code;
  });
  const writer = opts.input ? child.stdin.getWriter() : undefined;
  return {
    stdout: () => out,
    stderr: () => err,
    writeLine: async (line) => {
      if (writer === undefined) throw new Error("etcdctl was started without input");
      await writer.write(new TextEncoder().encode(line + "\n"));
    },
    exited,
    stop: async () => {
      if (!done) child.kill("SIGTERM");
      await writer?.close().catch(() => {});
      return await exited;
    },
  };
}

/** Polls cond until it holds; fails with `what` (and its last detail) after timeoutMs. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  what: () => string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A gauge or counter from the member's /metrics (0 when absent). */
export async function scrapeMetric(endpoint: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m === null ? 0 : Number(m[1]);
}

/** Waits until the member's etcd_debugging_mvcc_watcher_total is n: watches created (or gone) server-side. */
export async function watchersAre(endpoint: string, n: number): Promise<void> {
  await waitUntil(
    async () => (await scrapeMetric(endpoint, "etcd_debugging_mvcc_watcher_total")) === n,
    () => `${n} watchers on ${endpoint}`,
  );
}

/** Puts prefix0..prefix(n-1) (values 0..n-1) through the JSON gateway, 16 requests at a time. */
export async function putMany(endpoint: string, prefix: string, n: number): Promise<void> {
  const b64 = (t: string) => btoa(t);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await fetch(`http://${endpoint}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(`${prefix}${i}`), value: b64(String(i)) }),
      });
      if (r.status !== 200) throw new Error(`put ${prefix}${i}: ${r.status} ${await r.text()}`);
      await r.body?.cancel();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** Every endpoint answers `endpoint hashkv` with one hash: their members hold the same history. */
export async function assertOneHashKV(endpoints: string[]): Promise<void> {
  const texts = await Promise.all(endpoints.map((e) => ctl(e, "endpoint", "hashkv", "-w", "json")));
  const hashes = new Set(texts.map((t) => /"hash":(\d+)/.exec(t)![1]));
  if (hashes.size !== 1) throw new Error(`HashKV differs across members:\n${texts.join("\n")}`);
}
