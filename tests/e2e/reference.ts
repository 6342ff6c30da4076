// The reference for differential tests: Debian's etcd 3.4 started beside a detcd member, both fresh and with
// revisions in step, and what may legitimately differ between their answers masked.
import { etcdctl, freePort, installed, noEtcdctl, startMember, tempDir } from "./harness.ts";

const etcdPath = installed("/usr/bin/etcd", "/usr/local/bin/etcd");
const required = Deno.env.get("REQUIRE_ETCD") === "1";
export const opts = {
  sanitizeResources: false,
  sanitizeOps: false,
  ignore: noEtcdctl || (etcdPath === undefined && !required),
};

export async function startReferenceEtcd(
  extraArgs: string[] = [],
): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `127.0.0.1:${client}`;
  const stop = startReferenceMember([
    "--name=m1", // the name detcd's harness gives its member
    `--data-dir=${await tempDir()}/ref.etcd`,
    `--listen-client-urls=http://127.0.0.1:${client}`,
    `--advertise-client-urls=http://127.0.0.1:${client}`,
    `--listen-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-cluster=m1=http://127.0.0.1:${peer}`,
    ...extraArgs,
  ]);
  for (let i = 0; i < 100; i++) {
    if ((await etcdctl(endpoint, ["put", "__probe", "x"])).code === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await etcdctl(endpoint, ["del", "__probe"]);
  return { endpoint, stop };
}

/** Debian's etcd with `args`, not waited for; the returned stop ends it (SIGTERM) and waits. */
export function startReferenceMember(args: string[]): () => Promise<void> {
  if (etcdPath === undefined) throw new Error("etcd is not installed (apt-get install etcd-server)");
  const child = new Deno.Command(etcdPath, { args, stdout: "null", stderr: "null" }).spawn();
  return async () => {
    child.kill("SIGTERM");
    await child.status;
  };
}

/** The session: each step is etcdctl's arguments and, for txn -i, its input. */
/** What two correct servers may answer differently over the gateway: ids, sizes, addresses, the backend's hash. */
const MASKED_FIELDS: Record<string, string> = {
  // lease IDs carry the time; member and cluster IDs are not masked: both servers derive them from the same flags
  ID: "ID",
  dbSize: "SIZE",
  dbSizeInUse: "SIZE",
  clientURLs: "URLS",
  hash: "HASH",
};

export function mask(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(mask);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k in MASKED_FIELDS ? MASKED_FIELDS[k] : mask(x)]));
  }
  return v;
}

export async function post(endpoint: string, path: string, body: string) {
  const r = await fetch(`http://${endpoint}${path}`, { method: "POST", body });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = mask(JSON.parse(text));
  } catch { /* compared as text */ }
  return { status: r.status, json };
}

/** The first line of a streaming gateway response (keep-alive answers and stays open), masked. */
export async function firstLine(endpoint: string, path: string, body: string): Promise<unknown> {
  const ac = new AbortController();
  const r = await fetch(`http://${endpoint}${path}`, { method: "POST", body, signal: ac.signal });
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  ac.abort();
  return { status: r.status, json: mask(JSON.parse(text.split("\n")[0])) };
}

/** Masks what may differ between two correct servers: ids, sizes, timing, addresses. */
export function normalize(text: string, endpoint: string): string {
  return text
    .replaceAll(endpoint, "ENDPOINT")
    .replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":SIZE')
    .replace(/"ID":\d+/g, '"ID":MASKED')
    .replace(/took = [^\s]+/g, "took = T")
    .replace(/^\{"level":"warn".*\n/gm, "")
    .replace(/target":"[^"]*"/g, 'target":"T"');
}

/**
 * Both servers advertise the same peer URL (neither listens on it): etcd derives member and cluster IDs from it, so
 * both have the same IDs, and answers can be compared with them.
 */
const SAME_IDS = ["--initial-advertise-peer-urls=http://localhost:2380", "--initial-cluster=m1=http://localhost:2380"];

/** A fresh reference etcd and a fresh detcd, both given extraArgs, with revisions in step and the same IDs. */
export async function withBoth(fn: (ref: string, mine: string) => Promise<void>, extraArgs: string[] = []) {
  const ref = await startReferenceEtcd([...SAME_IDS, ...extraArgs]);
  const mine = await startMember({ extraArgs: [...SAME_IDS, ...extraArgs] });
  try {
    // the reference took a probe put and delete to know it was up: keep revisions in step
    await etcdctl(mine.endpoint, ["put", "__probe", "x"]);
    await etcdctl(mine.endpoint, ["del", "__probe"]);
    await fn(ref.endpoint, mine.endpoint);
  } finally {
    await ref.stop();
    await mine.stop();
  }
}

export async function observe(endpoint: string, args: string[], input?: string) {
  const r = await etcdctl(endpoint, args, input);
  return { code: r.code, stdout: normalize(r.stdout, endpoint), stderr: normalize(r.stderr, endpoint) };
}
