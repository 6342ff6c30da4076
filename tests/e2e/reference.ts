// The reference for differential tests: Debian's etcd 3.4 started beside a detcd member, both fresh and with
// revisions in step, and what may legitimately differ between their answers masked.
import { ctl, etcdctl, freePort, installed, noEtcdctl, startMember, tempDir } from "./harness.ts";

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

/** An etcdctl session: each step is etcdctl's arguments and, for txn -i, its input. */
export const ETCDCTL_SESSION: [string[], string?][] = [
  [["put", "foo", "bar"]],
  [["put", "foo1", "b1"]],
  [["put", "foo2", "b2"]],
  [["put", "zoo", "z"]],
  [["put", "foo", "bar2", "--prev-kv"]],
  [["get", "foo"]],
  [["get", "foo", "--prefix"]],
  [["get", "foo", "--prefix", "-w", "json"]],
  [["get", "foo", "--prefix", "--limit", "2", "-w", "json"]],
  [["get", "foo", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"]],
  [["get", "foo", "--prefix", "--sort-by=VALUE", "--order=ASCEND", "--limit", "2"]],
  [["get", "foo", "--prefix", "--sort-by=CREATE", "--order=DESCEND", "-w", "json"]],
  [["get", "foo", "--prefix", "--sort-by=VERSION", "--order=DESCEND", "--keys-only"]],
  [["get", "foo1", "--from-key", "--keys-only"]],
  [["get", "foo", "--prefix", "--print-value-only"]],
  [["get", "foo", "--rev=2", "-w", "json"]],
  [["get", "foo", "--rev=100"]],
  [["get", "nothing", "-w", "json"]],
  [["get", "a", "z"]],
  [["get", "foo", "--prefix", "--count-only", "-w", "json"]],
  [["put", "", "x"]],
  [["put", "ttl", "v", "--ignore-value"]],
  [["put", "foo", "--ignore-value"]],
  [["get", "foo", "-w", "json"]],
  [["del", "foo1"]],
  [["del", "nothing"]],
  [["del", "foo", "--prefix", "--prev-kv"]],
  [["get", "", "--from-key", "-w", "json"]],
  [["txn", "-i"], 'value("zoo") = "z"\n\nput zoo ok\nget zoo\n\nput zoo notok\n\n'],
  [["txn", "-i", "-w", "json"], 'mod("zoo") > "0"\nversion("zoo") = "5"\n\nput zoo a\n\ndel zoo\n\n'],
  [["txn", "-i"], 'create("missing") = "0"\n\nput missing now\n\n\n'],
  [["txn", "-i"], 'value("zoo") < "b"\n\nput x 1\nput x 2\n\n\n'],
  [["put", "c", "1"]],
  [["put", "c", "2"]],
  [["put", "c", "3"]],
  [["compaction", "14"]],
  [["get", "c", "--rev=13"]],
  [["get", "c", "--rev=14", "-w", "json"]],
  [["compaction", "10"]],
  [["compaction", "1000"]],
  [["get", "", "--from-key", "--keys-only"]],
  [["del", "a", "--from-key"]],
  [["get", "", "--from-key", "-w", "json"]],
  [["endpoint", "health"]],
  [["put", "leased", "v", "--lease=1234"]],
  [["get", "leased", "-w", "json"]],
  [["endpoint", "hashkv", "--rev=5"]],
  [["endpoint", "hashkv", "--rev=1000"]],
  [["endpoint", "status", "-w", "json"]],
  [["member", "list", "-w", "json"]],
  [["member", "list"]],
  [["defrag"]],
  [["put", "big"], "x".repeat(1600 * 1024)],
  [["put", "huge"], "x".repeat(2100 * 1024)],
  [["txn", "-i"], "\nput dup 1\nput dup 2\n\n\n"],
  [["txn", "-i"], "\nput d1 1\ndel d\x30 d2\n\n\n"],
  [["get", "big", "--count-only"]],
];

/** JSON gateway requests: path and body; compared as parsed JSON with ids masked. */
export const GATEWAY_SESSION: [string, string][] = [
  ["/v3/kv/put", JSON.stringify({ key: btoa("gw"), value: btoa("bar") })],
  ["/v3/kv/put", JSON.stringify({ key: btoa("gw"), value: btoa("baz"), prev_kv: true })],
  ["/v3/kv/range", JSON.stringify({ key: btoa("gw") })],
  ["/v3/kv/range", JSON.stringify({ key: btoa("g"), range_end: btoa("h"), count_only: true })],
  ["/v3/kv/range", JSON.stringify({ key: btoa("gw"), revision: "1000" })],
  [
    "/v3/kv/txn",
    JSON.stringify({
      compare: [{ key: btoa("gw"), result: "EQUAL", target: "VALUE", value: btoa("baz") }],
      success: [{ request_range: { key: btoa("gw") } }, { request_delete_range: { key: btoa("gw"), prev_kv: true } }],
    }),
  ],
  ["/v3/kv/deleterange", JSON.stringify({ key: btoa("gw") })],
  ["/v3/kv/compaction", JSON.stringify({ revision: "3" })],
  ["/v3/kv/range", JSON.stringify({ key: btoa("gw"), revision: "2" })],
  ["/v3/kv/put", JSON.stringify({ value: btoa("no key") })],
  ["/v3beta/kv/put", JSON.stringify({ key: btoa("beta"), value: btoa("b") })],
  ["/v3beta/kv/range", JSON.stringify({ key: btoa("beta") })],
  ["/v3/kv/put", JSON.stringify({ key: btoa("u"), value: btoa("v"), no_such_field: { nested: [1, 2] } })],
  ["/v3/kv/range", JSON.stringify({ key: btoa("u"), unknown: "x" })],
  ["/v3/kv/put", JSON.stringify({ key: btoa("leased"), value: btoa("v"), lease: "12345" })],
  [
    "/v3/kv/txn",
    JSON.stringify({ success: [{ request_put: { key: btoa("leased"), value: btoa("v"), lease: "99" } }] }),
  ],
  ["/v3/kv/range", JSON.stringify({ key: btoa("leased") })],
  ["/v3/maintenance/hash", "{}"],
  ["/v3/maintenance/status", "{}"],
  ["/v3/maintenance/defragment", "{}"],
  ["/v3/cluster/member/list", "{}"],
  [
    "/v3/kv/txn",
    JSON.stringify({
      success: Array.from({ length: 129 }, (_, i) => ({ request_put: { key: btoa(`t${i}`), value: btoa("v") } })),
    }),
  ],
  ["/v3/kv/deleterange", JSON.stringify({ key: btoa("") })],
];

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

/**
 * What two servers holding the same data must answer alike, through etcdctl: every key, lease 1234 and its keys, the
 * history's hash, and the error for `compacted`, a revision compacted away (raft terms and TTLs left masked).
 */
export async function dataAnswers(ep: string, compacted: number): Promise<string[]> {
  return [
    await ctl(ep, "get", "", "--from-key", "-w", "json"),
    await ctl(ep, "lease", "timetolive", "1234", "--keys"),
    await ctl(ep, "endpoint", "hashkv", "-w", "json"),
    (await etcdctl(ep, ["get", "k5", `--rev=${compacted}`])).stderr,
  ].map((t) => normalize(t, ep).replace(/"raft_term":\d+/g, '"raft_term":T').replace(/remaining\(\d+s\)/, "R"));
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
