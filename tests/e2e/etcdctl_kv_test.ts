// The acceptance walk of a new user: the real etcdctl 3.4 against a real detcd process.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { ctl, etcdctl, type Member, noEtcdctl, startMember } from "./harness.ts";

let member: Member | undefined;
async function m(): Promise<Member> {
  member ??= await startMember();
  return member;
}

const opts = { ignore: noEtcdctl, sanitizeResources: false, sanitizeOps: false };

function test(name: string, fn: (ep: string) => Promise<void>) {
  Deno.test({ name: `etcdctl: ${name}`, ...opts, fn: async () => fn((await m()).endpoint) });
}

test("put and get with prefix, from-key, limit, sort, keys-only, print-value-only", async (ep) => {
  for (const [k, v] of [["foo", "bar"], ["foo1", "b1"], ["foo2", "b2"], ["zoo", "z"]]) {
    assertEquals(await ctl(ep, "put", k, v), "OK\n");
  }
  assertEquals(await ctl(ep, "get", "foo"), "foo\nbar\n");
  assertEquals(await ctl(ep, "get", "foo", "--prefix"), "foo\nbar\nfoo1\nb1\nfoo2\nb2\n");
  assertEquals(
    await ctl(ep, "get", "foo", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"),
    "foo2\nb2\nfoo1\nb1\nfoo\nbar\n",
  );
  assertEquals(await ctl(ep, "get", "foo1", "--from-key", "--keys-only"), "foo1\n\nfoo2\n\nzoo\n\n");
  assertEquals(await ctl(ep, "get", "foo", "--prefix", "--print-value-only"), "bar\nb1\nb2\n");
  assertEquals(await ctl(ep, "get", "foo", "--prefix", "--limit", "2"), "foo\nbar\nfoo1\nb1\n");
  assertEquals(await ctl(ep, "get", "nothing"), "");
});

test("get -w json carries header, revisions, more and count", async (ep) => {
  const out = JSON.parse(await ctl(ep, "get", "foo", "--prefix", "--limit", "2", "-w", "json"));
  assert(out.header.cluster_id > 0 && out.header.member_id > 0 && out.header.raft_term >= 2);
  assertEquals(out.more, true);
  assertEquals(out.count, 3);
  assertEquals(out.kvs.length, 2);
  assertEquals(atob(out.kvs[0].key), "foo");
  assertEquals(atob(out.kvs[0].value), "bar");
  assertEquals(out.kvs[0].version, 1);
  assert(out.kvs[1].mod_revision > out.kvs[0].mod_revision);
  assertEquals(out.header.revision >= out.kvs[1].mod_revision, true);
});

test("get --rev reads an old revision", async (ep) => {
  const rev = JSON.parse(await ctl(ep, "put", "versioned", "one", "-w", "json")).header.revision;
  await ctl(ep, "put", "versioned", "two");
  assertEquals(await ctl(ep, "get", "versioned", `--rev=${rev}`, "--print-value-only"), "one\n");
  assertEquals(await ctl(ep, "get", "versioned", "--print-value-only"), "two\n");
  const j = JSON.parse(await ctl(ep, "get", "versioned", "-w", "json"));
  assertEquals(j.kvs[0].version, 2);
  assertEquals(j.kvs[0].create_revision, rev);
});

test("del with --prefix and --prev-kv", async (ep) => {
  await ctl(ep, "put", "d/a", "1");
  await ctl(ep, "put", "d/b", "2");
  await ctl(ep, "put", "d/c", "3");
  assertEquals(await ctl(ep, "del", "d/a"), "1\n");
  assertEquals(await ctl(ep, "del", "d/", "--prefix", "--prev-kv"), "2\nd/b\n2\nd/c\n3\n");
  assertEquals(await ctl(ep, "get", "d/", "--prefix"), "");
  assertEquals(await ctl(ep, "del", "d/a"), "0\n");
});

test("txn -i takes the success and the failure branch", async (ep) => {
  await ctl(ep, "put", "tx", "z");
  const ok = await etcdctl(ep, ["txn", "-i"], 'value("tx") = "z"\n\nput tx ok\n\nput tx notok\n\n');
  assertEquals(ok.code, 0, ok.stderr);
  assertMatch(ok.stdout, /SUCCESS\n\nOK\n$/);
  assertEquals(await ctl(ep, "get", "tx", "--print-value-only"), "ok\n");
  const no = await etcdctl(ep, ["txn", "-i"], 'value("tx") = "z"\n\nput tx again\n\nget tx\n\n');
  assertEquals(no.code, 0, no.stderr);
  assertMatch(no.stdout, /FAILURE\n\ntx\nok\n$/);
  const mod = await etcdctl(ep, ["txn", "-i"], 'mod("tx") > "0"\nversion("tx") = "2"\n\ndel tx\n\n\n');
  assertEquals(mod.code, 0, mod.stderr);
  assertMatch(mod.stdout, /SUCCESS\n\n1\n$/);
});

test("compaction, then a compacted revision gives etcd's error", async (ep) => {
  const r1 = JSON.parse(await ctl(ep, "put", "c", "1", "-w", "json")).header.revision;
  const r2 = JSON.parse(await ctl(ep, "put", "c", "2", "-w", "json")).header.revision;
  assertEquals(await ctl(ep, "compaction", String(r2)), `compacted revision ${r2}\n`);
  const old = await etcdctl(ep, ["get", "c", `--rev=${r1}`]);
  assertEquals(old.code, 1);
  assertMatch(old.stderr, /Error: etcdserver: mvcc: required revision has been compacted/);
  assertEquals(await ctl(ep, "get", "c", `--rev=${r2}`, "--print-value-only"), "2\n");
  const future = await etcdctl(ep, ["get", "c", "--rev=100000"]);
  assertMatch(future.stderr, /Error: etcdserver: mvcc: required revision is a future revision/);
  const again = await etcdctl(ep, ["compaction", String(r1)]);
  assertMatch(again.stderr, /etcdserver: mvcc: required revision has been compacted/);
});

test("empty key is refused with etcd's error", async (ep) => {
  const r = await etcdctl(ep, ["put", "", "x"]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /Error: etcdserver: key is not provided/);
});

test("endpoint status and endpoint health", async (ep) => {
  const st = JSON.parse(await ctl(ep, "endpoint", "status", "-w", "json"))[0];
  assertEquals(st.Endpoint, ep);
  assertEquals(st.Status.leader, st.Status.header.member_id);
  assertEquals(st.Status.version, "3.4.23");
  assert(st.Status.dbSize > 0);
  assert(st.Status.dbSizeInUse > 0 && st.Status.dbSizeInUse <= st.Status.dbSize, JSON.stringify(st.Status));
  assertEquals([st.Status.isLearner, st.Status.errors], [undefined, undefined]); // false and none: left out
  assert(st.Status.raftIndex >= st.Status.raftAppliedIndex && st.Status.raftAppliedIndex > 0);
  const table = await ctl(ep, "endpoint", "status");
  assertMatch(table, new RegExp(`^${ep}, [0-9a-f]+, 3\\.4\\.23, `));
  // etcdctl 3.4 prints the health line on stderr
  const health = await etcdctl(ep, ["endpoint", "health"]);
  assertEquals(health.code, 0);
  assertMatch(health.stderr, new RegExp(`^${ep} is healthy: successfully committed proposal`));
});

test("member list shows this member", async (ep) => {
  const out = await ctl(ep, "member", "list");
  assertMatch(out, new RegExp(`^[0-9a-f]+, started, m1, http://127\\.0\\.0\\.1:\\d+, http://${ep}, false\\n$`));
});

test("defrag, hashkv and a physical compaction", async (ep) => {
  assertEquals(await ctl(ep, "defrag"), `Finished defragmenting etcd member[${ep}]\n`);
  const h1 = await ctl(ep, "endpoint", "hashkv");
  assertMatch(h1, new RegExp(`^${ep}, \\d+\\n$`));
  assertEquals(await ctl(ep, "endpoint", "hashkv"), h1, "hash changed without writes");
  await ctl(ep, "put", "phys", "1");
  const rev = JSON.parse(await ctl(ep, "put", "phys", "2", "-w", "json")).header.revision;
  assertEquals(await ctl(ep, "compaction", "--physical", String(rev)), `compacted revision ${rev}\n`);
  assertEquals(await ctl(ep, "alarm", "list"), "");
});

test("the JSON gateway answers like etcd's (curl-style requests)", async (ep) => {
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`http://${ep}${path}`, { method: "POST", body: JSON.stringify(body) });
    assertEquals(r.status, 200);
    return await r.json();
  };
  const put = await post("/v3/kv/put", { key: btoa("gw"), value: btoa("bar") });
  assertEquals(Object.keys(put), ["header"]);
  assertMatch(put.header.revision, /^\d+$/, "int64 fields are strings");
  assertMatch(put.header.cluster_id, /^\d+$/);
  const rev = put.header.revision;
  const range = await post("/v3/kv/range", { key: btoa("gw") });
  assertEquals(range.kvs, [{
    key: btoa("gw"),
    create_revision: rev,
    mod_revision: rev,
    version: "1",
    value: btoa("bar"),
  }]);
  assertEquals(range.count, "1");
  assertEquals(range.more, undefined, "defaults are omitted");
  const count = await post("/v3/kv/range", { key: btoa("gw"), count_only: true });
  assertEquals(count.kvs, undefined);
  assertEquals(count.count, "1");
  const txn = await post("/v3/kv/txn", {
    compare: [{ key: btoa("gw"), result: "EQUAL", target: "VERSION", version: "1" }],
    success: [{ request_put: { key: btoa("gw"), value: btoa("baz") } }],
  });
  assertEquals(txn.succeeded, true);
  assertEquals(Object.keys(txn.responses[0]), ["response_put"]);
  const del = await post("/v3/kv/deleterange", { key: btoa("gw") });
  assertEquals(del.deleted, "1");
  const status = await post("/v3/maintenance/status", {});
  assertEquals(status.version, "3.4.23");
  assertEquals(status.leader, status.header.member_id);
});

Deno.test({
  name: "etcdctl: stop the member",
  ...opts,
  fn: async () => {
    if (member !== undefined) assertEquals(await member.stop(), 0);
  },
});
