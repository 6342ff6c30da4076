// Differential lease tests: the same etcdctl lease session against Debian's etcd 3.4 and against detcd prints the same
// thing. Lease IDs differ by design (they carry the member ID and the start time): each server's IDs are named L1,
// L2, ... in the order it granted them, and later steps refer to them by those names.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ctl, etcdctl, spawnEtcdctl, waitUntil } from "./harness.ts";
import { firstLine, normalize, opts, post, withBoth } from "./reference.ts";

/** One server's side of the session: its lease IDs, by grant order. */
class Leases {
  readonly ids: bigint[] = [];
  constructor(readonly endpoint: string) {}

  /** Arguments with $1, $2, ... replaced by this server's IDs in hex. */
  args(args: readonly string[]): string[] {
    return args.map((a) => a.replace(/\$(\d)/g, (_, n) => this.ids[Number(n) - 1].toString(16)));
  }

  /** Output with this server's IDs named, in hex and in decimal (JSON), remaining TTLs masked (they tick). */
  normalize(text: string): string {
    let t = normalize(text, this.endpoint).replace(/remaining\(\d+s\)/g, "remaining(R)")
      // etcd lists a lease's keys in Go map order, which is random
      .replace(
        /attached keys\(\[(.*)\]\)/g,
        (_, keys: string) => `attached keys([${keys.split(" ").sort().join(" ")}])`,
      );
    this.ids.forEach((id, i) =>
      t = t.replaceAll(id.toString(16).padStart(16, "0"), `L${i + 1}`).replaceAll(id.toString(), `L${i + 1}`)
    );
    return t;
  }

  async run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await etcdctl(this.endpoint, this.args(args));
    const granted = /^lease ([0-9a-f]+) granted/.exec(r.stdout);
    if (granted !== null) this.ids.push(BigInt(`0x${granted[1]}`));
    return { code: r.code, stdout: this.normalize(r.stdout), stderr: this.normalize(r.stderr) };
  }
}

async function both(ref: Leases, mine: Leases, args: readonly string[]): Promise<void> {
  assertEquals(await mine.run(args), await ref.run(args), `etcdctl ${args.join(" ")}`);
}

Deno.test({
  name: "differential lease: grant, attach, timetolive, list, keep-alive, revoke, errors",
  ...opts,
  fn: () =>
    withBoth(async (refEp, mineEp) => {
      const ref = new Leases(refEp), mine = new Leases(mineEp);
      const session = [
        ["lease", "grant", "100"],
        ["lease", "grant", "200"],
        ["lease", "grant", "1"], // raised to the minimum TTL
        ["lease", "revoke", "$3"], // before it expires: what follows must not depend on timing
        ["lease", "grant", "9000000001"], // too large
        ["lease", "grant", "-5"],
        ["put", "--lease=$1", "foo", "bar"],
        ["put", "--lease=$1", "foo2", "bar"],
        ["put", "--lease=$2", "zed", "z"],
        ["get", "foo", "-w", "json"],
        ["lease", "timetolive", "$1"],
        ["lease", "timetolive", "$1", "--keys"],
        ["lease", "list"],
        ["lease", "keep-alive", "--once", "$1"],
        ["put", "foo2", "unleased"], // detaches foo2
        ["lease", "timetolive", "$1", "--keys", "-w", "json"], // one key: etcd orders several at random
        ["put", "--lease=$2", "foo", "moved"], // moves foo to L2
        ["lease", "timetolive", "$1", "--keys"],
        ["lease", "timetolive", "$2", "--keys"],
        ["put", "--lease=1234", "x", "y"], // no such lease
        ["put", "--ignore-lease", "zed", "kept"],
        ["get", "zed", "-w", "json"],
        ["lease", "revoke", "$2"], // deletes foo and zed in one revision
        ["get", "", "--prefix", "-w", "json"],
        ["lease", "timetolive", "$2"],
        ["lease", "revoke", "$2"],
        ["lease", "keep-alive", "--once", "$2"],
        ["lease", "list"],
      ];
      for (const args of session) await both(ref, mine, args);
      // lease keep-alive runs until stopped, one line per renewal (the first at once)
      const keepers = [ref, mine].map((l) => spawnEtcdctl(l.endpoint, l.args(["lease", "keep-alive", "$1"])));
      for (const k of keepers) await waitUntil(() => k.stdout().includes("keepalived"), () => k.stdout());
      await Promise.all(keepers.map((k) => k.stop()));
      assertEquals(mine.normalize(keepers[1].stdout()), ref.normalize(keepers[0].stdout()));
      for (const args of [["lease", "keep-alive", "$2"], ["lease", "revoke", "$1"], ["lease", "list"]]) {
        await both(ref, mine, args); // keep-alive of a revoked lease ends at once
      }
    }),
});

Deno.test({
  name: "differential lease: an expired lease deletes its keys through raft; a watcher sees the DELETEs",
  ...opts,
  fn: () =>
    withBoth(async (refEp, mineEp) => {
      const ref = new Leases(refEp), mine = new Leases(mineEp);
      for (
        const args of [["lease", "grant", "2"], ["put", "--lease=$1", "exp/a", "1"], [
          "put",
          "--lease=$1",
          "exp/b",
          "2",
        ]]
      ) {
        await both(ref, mine, args);
      }
      const watches = [ref, mine].map((s) => spawnEtcdctl(s.endpoint, ["watch", "--prefix", "exp/", "--rev", "1"]));
      try {
        for (const s of [ref, mine]) {
          await waitUntil(
            async () => (await ctl(s.endpoint, "get", "exp/", "--prefix", "--keys-only")).trim() === "",
            () => `the keys of an expired lease on ${s.endpoint} to go`,
          );
        }
        for (const w of watches) await waitUntil(() => w.stdout().split("DELETE").length === 3, () => w.stdout());
        assertEquals(mine.normalize(watches[1].stdout()), ref.normalize(watches[0].stdout()));
        await both(ref, mine, ["get", "exp/", "--prefix", "-w", "json"]); // same revision: one for both deletes
        await both(ref, mine, ["lease", "timetolive", "$1"]);
        await both(ref, mine, ["lease", "list"]);
      } finally {
        await Promise.all(watches.map((w) => w.stop()));
      }
    }),
});

Deno.test({
  name: "differential lease: the JSON gateway's lease paths",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const steps: [string, string][] = [
        ["/v3/lease/grant", '{"TTL":30,"ID":7}'],
        ["/v3/lease/grant", '{"TTL":30,"ID":7}'],
        ["/v3/lease/grant", '{"TTL":1,"ID":"9"}'],
        ["/v3/kv/put", '{"key":"Zm9v","value":"YmFy","lease":"7"}'],
        ["/v3/lease/timetolive", '{"ID":7,"keys":true}'],
        ["/v3/kv/lease/timetolive", '{"ID":8}'],
        ["/v3/lease/leases", "{}"],
        ["/v3/kv/lease/leases", "{}"],
        ["/v3/lease/revoke", '{"ID":7}'],
        ["/v3/kv/lease/revoke", '{"ID":7}'],
        ["/v3/kv/range", '{"key":"Zm9v"}'],
      ];
      for (const [path, body] of steps) {
        assertEquals(await post(mine, path, body), await post(ref, path, body), `${path} ${body}`);
        if (path === "/v3/lease/grant" && body.includes('"ID":7')) {
          const ka = '{"ID":7}';
          assertEquals(
            await firstLine(mine, "/v3/lease/keepalive", ka),
            await firstLine(ref, "/v3/lease/keepalive", ka),
          );
        }
      }
      const gone = '{"ID":8}';
      assertEquals(
        await firstLine(mine, "/v3/lease/keepalive", gone),
        await firstLine(ref, "/v3/lease/keepalive", gone),
      );
    }),
});
