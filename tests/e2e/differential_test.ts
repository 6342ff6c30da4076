// Differential test: the same etcdctl session against Debian's etcd 3.4 and against detcd,
// both fresh, must print the same thing — values, revisions, counts, errors, exit codes.
// Only what legitimately differs is masked: member and cluster ids and sizes.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { observe, opts, post, withBoth } from "./reference.ts";

const session: [string[], string?][] = [
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
const gateway: [string, string][] = [
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

Deno.test({
  name: "differential: an etcdctl session prints the same against etcd 3.4 and detcd",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      for (const [args, input] of session) {
        assertEquals(await observe(mine, args, input), await observe(ref, args, input), `etcdctl ${args.join(" ")}`);
      }
    }),
});

Deno.test({
  name: "differential: the JSON gateway answers the same as etcd 3.4's",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      for (const [path, body] of gateway) {
        assertEquals(await post(mine, path, body), await post(ref, path, body), `${path} ${body}`);
      }
      // malformed JSON and an unknown enum name: same status and code; the parser's own wording (Go's vs
      // JavaScript's) differs
      for (const body of ["{not", JSON.stringify({ key: btoa("a"), sort_order: "NOPE" })]) {
        const [a, b] = [await post(ref, "/v3/kv/range", body), await post(mine, "/v3/kv/range", body)];
        assertEquals([b.status, (b.json as { code: number }).code], [a.status, (a.json as { code: number }).code]);
      }
    }),
});
