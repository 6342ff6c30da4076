// Differential test: the same etcdctl session against Debian's etcd 3.4 and against detcd,
// both fresh, must print the same thing — values, revisions, counts, errors, exit codes.
// Only what legitimately differs is masked: member and cluster ids and sizes.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ETCDCTL_SESSION, GATEWAY_SESSION, observe, opts, post, withBoth } from "./reference.ts";

Deno.test({
  name: "differential: an etcdctl session prints the same against etcd 3.4 and detcd",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      for (const [args, input] of ETCDCTL_SESSION) {
        assertEquals(await observe(mine, args, input), await observe(ref, args, input), `etcdctl ${args.join(" ")}`);
      }
    }),
});

Deno.test({
  name: "differential: the JSON gateway answers the same as etcd 3.4's",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      for (const [path, body] of GATEWAY_SESSION) {
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
