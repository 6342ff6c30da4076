import { create } from "@bufbuild/protobuf";
import {
  CompactionRequestSchema,
  type Compare,
  Compare_CompareResult as R,
  Compare_CompareTarget as T,
  CompareSchema,
  DeleteRangeRequestSchema,
  PutRequestSchema,
  type RangeRequest,
  RangeRequest_SortOrder as Order,
  RangeRequest_SortTarget as Target,
  RangeRequestSchema,
  type RequestOp,
  RequestOpSchema,
  type TxnRequest,
  TxnRequestSchema,
  type TxnResponse,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import type { KeyValue } from "../../rpc/gen/mvccpb/kv_pb.ts";
import { Applier, type ApplierOptions } from "../../server/apply.ts";
import {
  ErrGRPCCompacted,
  ErrGRPCFutureRev,
  ErrGRPCKeyNotFound,
  ErrGRPCLeaseNotFound,
  ErrGRPCNoSpace,
} from "../../server/apply_errors.ts";
import { assert, assertEquals, assertThrows, b, openStore, s, tempDir } from "../mvcc/helpers.ts";

const ALL = new Uint8Array([0]);
type RInit = { [K in keyof Omit<RangeRequest, "$typeName" | "$unknown">]?: RangeRequest[K] };

/** a=1 (c2 m5 v2), b=0 (c3 m8 v3), c=3 (c4 m4 v1), d=2 (c6 m6 v1); rev 8. */
async function fixture(opts: ApplierOptions = {}) {
  const o = await openStore(await tempDir());
  const a = new Applier(o.store, opts);
  for (const [k, v] of [["a", "5"], ["b", "4"], ["c", "3"], ["a", "1"], ["d", "2"], ["b", "9"], ["b", "0"]]) {
    a.put(create(PutRequestSchema, { key: b(k), value: b(v) }));
  }
  return { ...o, a };
}

const keys = (kvs: KeyValue[]) => kvs.map((kv) => s(kv.key)).join("");
const rreq = (init: RInit) => create(RangeRequestSchema, { key: b("a"), rangeEnd: ALL, ...init });
const put = (k: string, v: string, extra = {}): RequestOp =>
  create(RequestOpSchema, {
    request: { case: "requestPut", value: create(PutRequestSchema, { key: b(k), value: b(v), ...extra }) },
  });
const del = (k: string, end?: Uint8Array): RequestOp =>
  create(RequestOpSchema, {
    request: { case: "requestDeleteRange", value: create(DeleteRangeRequestSchema, { key: b(k), rangeEnd: end }) },
  });
const get = (k: string, extra: RInit = {}): RequestOp =>
  create(RequestOpSchema, {
    request: { case: "requestRange", value: create(RangeRequestSchema, { key: b(k), ...extra }) },
  });
const sub = (t: TxnRequest): RequestOp => create(RequestOpSchema, { request: { case: "requestTxn", value: t } });
const txn = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []) =>
  create(TxnRequestSchema, { compare, success, failure });
const cmp = (key: string, target: T, result: R, v: bigint | string, rangeEnd?: string): Compare => {
  const caseName = ({
    [T.VERSION]: "version",
    [T.CREATE]: "createRevision",
    [T.MOD]: "modRevision",
    [T.VALUE]: "value",
    [T.LEASE]: "lease",
  } as const)[target];
  return create(CompareSchema, {
    key: b(key),
    target,
    result,
    rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd),
    // deno-lint-ignore no-explicit-any
    targetUnion: { case: caseName, value: typeof v === "string" ? b(v) : v } as any,
  });
};

Deno.test("apply: range limit/sort/filter/count combinations follow etcd's Range", async () => {
  const { a, close } = await fixture();
  try {
    const cases: [string, RInit, string, boolean, bigint][] = [
      ["limit, no sort: one extra fetched for more", { limit: 2n }, "ab", true, 4n],
      ["limit equal to the count", { limit: 4n }, "abcd", false, 4n],
      ["limit above the count", { limit: 10n }, "abcd", false, 4n],
      [
        "version descend, ties in key order",
        { sortTarget: Target.VERSION, sortOrder: Order.DESCEND },
        "bacd",
        false,
        4n,
      ],
      ["sort then limit", { sortTarget: Target.VERSION, sortOrder: Order.DESCEND, limit: 2n }, "ba", true, 4n],
      ["non-key target with NONE order sorts ascending", { sortTarget: Target.MOD }, "cadb", false, 4n],
      ["key descend", { sortOrder: Order.DESCEND }, "dcba", false, 4n],
      ["key ascend", { sortOrder: Order.ASCEND, limit: 3n }, "abc", true, 4n],
      ["value ascend", { sortTarget: Target.VALUE, sortOrder: Order.ASCEND }, "badc", false, 4n],
      ["create descend", { sortTarget: Target.CREATE, sortOrder: Order.DESCEND }, "dcba", false, 4n],
      ["min mod filter keeps count of all keys", { minModRevision: 5n }, "abd", false, 4n],
      ["max mod filter", { maxModRevision: 5n }, "ac", false, 4n],
      ["min create filter", { minCreateRevision: 4n }, "cd", false, 4n],
      ["max create filter with limit", { maxCreateRevision: 3n, limit: 1n }, "a", true, 4n],
      ["count only", { countOnly: true }, "", false, 4n],
      ["count only with limit", { countOnly: true, limit: 1n }, "", false, 4n],
      ["past revision", { revision: 4n }, "abc", false, 3n],
      ["sub range", { key: b("b"), rangeEnd: b("d") }, "bc", false, 2n],
      ["single key", { key: b("c"), rangeEnd: new Uint8Array() }, "c", false, 1n],
      ["missing key", { key: b("zz"), rangeEnd: new Uint8Array() }, "", false, 0n],
    ];
    for (const [name, init, want, more, count] of cases) {
      const r = a.range(rreq(init));
      assertEquals([keys(r.kvs), r.more, r.count], [want, more, count], name);
      assertEquals(r.header?.revision, 8n, name);
    }
    const past = a.range(rreq({ revision: 4n }));
    assertEquals(past.kvs.map((kv) => s(kv.value)), ["5", "4", "3"]);
    const ko = a.range(rreq({ keysOnly: true }));
    assertEquals(ko.kvs.map((kv) => kv.value.length), [0, 0, 0, 0]);
    assertEquals(a.range(rreq({})).kvs[0].value, b("1"), "keys_only must not alter stored kvs");
    assertThrows(() => a.range(rreq({ revision: 9n })), (e) => e === ErrGRPCFutureRev);
    await a.compaction(create(CompactionRequestSchema, { revision: 5n })).physical;
    assertThrows(() => a.range(rreq({ revision: 4n })), (e) => e === ErrGRPCCompacted);
    assertEquals(keys(a.range(rreq({ revision: 5n })).kvs), "abc");
  } finally {
    await close();
  }
});

Deno.test("apply: put prev_kv, ignore_value, ignore_lease, lease checks", async () => {
  const { a, store, close } = await fixture({ leaseExists: (id) => id === 42n });
  try {
    let r = a.put(create(PutRequestSchema, { key: b("a"), value: b("x"), prevKv: true, lease: 42n }));
    assertEquals([r.header?.revision, s(r.prevKv!.value)], [9n, "1"]);
    r = a.put(create(PutRequestSchema, { key: b("a"), value: b("y"), ignoreLease: true }));
    assertEquals(r.prevKv, undefined);
    let kv = a.range(rreq({ key: b("a"), rangeEnd: new Uint8Array() })).kvs[0];
    assertEquals([s(kv.value), kv.lease, kv.version], ["y", 42n, 4n]);
    a.put(create(PutRequestSchema, { key: b("a"), ignoreValue: true }));
    kv = a.range(rreq({ key: b("a"), rangeEnd: new Uint8Array() })).kvs[0];
    assertEquals([s(kv.value), kv.lease, kv.modRevision], ["y", 0n, 11n]);
    assertThrows(
      () => a.put(create(PutRequestSchema, { key: b("nope"), ignoreValue: true })),
      (e) => e === ErrGRPCKeyNotFound,
    );
    assertThrows(() => a.put(create(PutRequestSchema, { key: b("q"), lease: 7n })), (e) => e === ErrGRPCLeaseNotFound);
    assertEquals(store.rev, 11, "failed puts do not bump the revision");
  } finally {
    await close();
  }
});

Deno.test("apply: deleteRange prev_kv, count, revision", async () => {
  const { a, close } = await fixture();
  try {
    let r = a.deleteRange(create(DeleteRangeRequestSchema, { key: b("b"), rangeEnd: b("d"), prevKv: true }));
    assertEquals([r.deleted, keys(r.prevKvs), r.header?.revision], [2n, "bc", 9n]);
    r = a.deleteRange(create(DeleteRangeRequestSchema, { key: b("b"), prevKv: true }));
    assertEquals([r.deleted, r.prevKvs.length, r.header?.revision], [0n, 0, 9n]);
    r = a.deleteRange(create(DeleteRangeRequestSchema, { key: b("a"), rangeEnd: ALL }));
    assertEquals([r.deleted, r.prevKvs.length, r.header?.revision], [2n, 0, 10n]);
  } finally {
    await close();
  }
});

Deno.test("apply: txn compare table", async () => {
  const { a, close } = await fixture();
  try {
    const table: [Compare, boolean][] = [
      [cmp("a", T.VERSION, R.EQUAL, 2n), true],
      [cmp("a", T.VERSION, R.GREATER, 1n), true],
      [cmp("a", T.VERSION, R.LESS, 2n), false],
      [cmp("a", T.VERSION, R.NOT_EQUAL, 2n), false],
      [cmp("a", T.CREATE, R.EQUAL, 2n), true],
      [cmp("a", T.CREATE, R.LESS, 3n), true],
      [cmp("a", T.MOD, R.GREATER, 5n), false],
      [cmp("a", T.MOD, R.NOT_EQUAL, 4n), true],
      [cmp("a", T.VALUE, R.EQUAL, "1"), true],
      [cmp("a", T.VALUE, R.LESS, "2"), true],
      [cmp("a", T.VALUE, R.GREATER, ""), true],
      [cmp("a", T.VALUE, R.NOT_EQUAL, "1"), false],
      [cmp("a", T.LEASE, R.EQUAL, 0n), true],
      [cmp("a", T.LEASE, R.GREATER, 0n), false],
      [cmp("zz", T.VERSION, R.EQUAL, 0n), true],
      [cmp("zz", T.CREATE, R.LESS, 1n), true],
      [cmp("zz", T.MOD, R.EQUAL, 0n), true],
      [cmp("zz", T.VALUE, R.EQUAL, ""), false],
      [cmp("zz", T.VALUE, R.NOT_EQUAL, "x"), false],
      [cmp("a", T.VERSION, R.GREATER, 1n, "c"), true],
      [cmp("a", T.VERSION, R.EQUAL, 2n, "c"), false],
      [cmp("a", T.MOD, R.LESS, 9n, "\0"), true],
      [cmp("x", T.VERSION, R.EQUAL, 0n, "z"), true],
    ];
    for (const [c, want] of table) {
      const r = a.txn(txn([c], [get("a")], []));
      assertEquals(r.succeeded, want, `${s(c.key)} ${T[c.target]} ${R[c.result]} ${String(c.targetUnion.value)}`);
      assertEquals(r.header?.revision, 8n);
    }
    const both = a.txn(txn([cmp("a", T.VERSION, R.EQUAL, 2n), cmp("b", T.VALUE, R.EQUAL, "nope")], [], []));
    assertEquals(both.succeeded, false);
  } finally {
    await close();
  }
});

Deno.test("apply: txn writes share one revision and read their own writes", async () => {
  const { a, store, close } = await fixture();
  try {
    let r = a.txn(txn([cmp("a", T.VALUE, R.EQUAL, "1")], [put("x", "1"), put("y", "2"), get("x"), del("c")]));
    assertEquals([r.succeeded, r.header?.revision, store.rev], [true, 9n, 9]);
    const [px, py, gx, dc] = r.responses.map((o) => o.response);
    assertEquals(px.case === "responsePut" && px.value.header?.revision, 9n);
    assertEquals(py.case === "responsePut" && py.value.header?.revision, 9n);
    assert(gx.case === "responseRange");
    assertEquals([keys(gx.value.kvs), gx.value.header?.revision, gx.value.kvs[0].modRevision], ["x", 9n, 9n]);
    assert(dc.case === "responseDeleteRange");
    assertEquals([dc.value.deleted, dc.value.header?.revision], [1n, 9n]);
    const x = a.range(rreq({ key: b("x"), rangeEnd: new Uint8Array() })).kvs[0];
    assertEquals([x.createRevision, x.modRevision], [9n, 9n]);

    // Failure branch with no ops changes nothing.
    r = a.txn(txn([cmp("a", T.VALUE, R.EQUAL, "2")], [put("x", "2")]));
    assertEquals([r.succeeded, r.responses.length, r.header?.revision, store.rev], [false, 0, 9n, 9]);
    // A write txn whose chosen branch only reads keeps the revision.
    r = a.txn(txn([], [get("a")], [put("z", "1")]));
    assertEquals([r.succeeded, r.header?.revision, store.rev], [true, 9n, 9]);
    // Range at a future revision is rejected before anything is applied.
    assertThrows(() => a.txn(txn([], [put("w", "1"), get("a", { revision: 10n })])), (e) => e === ErrGRPCFutureRev);
    assertThrows(() => a.txn(txn([], [put("w", "1", { ignoreValue: true })])), (e) => e === ErrGRPCKeyNotFound);
    assertEquals(store.rev, 9);
    assertEquals(a.range(rreq({ key: b("w"), rangeEnd: new Uint8Array() })).count, 0n);
  } finally {
    await close();
  }
});

Deno.test("apply: nested txn compares are evaluated before any op applies", async () => {
  const { a, store, close } = await fixture();
  try {
    const inner = txn([cmp("q", T.VERSION, R.EQUAL, 1n)], [put("r", "1")], [put("s", "1"), get("q")]);
    const inner2 = txn([cmp("a", T.VERSION, R.EQUAL, 2n)], [put("t", "1")], []);
    const r = a.txn(txn([], [put("q", "1"), sub(inner), sub(inner2), put("u", "1")]));
    assertEquals([r.succeeded, r.header?.revision, store.rev], [true, 9n, 9]);
    const n1 = r.responses[1].response;
    assert(n1.case === "responseTxn");
    const nested: TxnResponse = n1.value;
    assertEquals([nested.succeeded, nested.header?.revision], [false, 0n]);
    const q = nested.responses[1].response;
    assert(q.case === "responseRange");
    assertEquals(keys(q.value.kvs), "q", "nested ops see earlier writes of the txn");
    const n2 = r.responses[2].response;
    assert(n2.case === "responseTxn");
    assertEquals(n2.value.succeeded, true);
    assertEquals(keys(a.range(rreq({ key: b("q"), rangeEnd: ALL })).kvs), "qstu");
  } finally {
    await close();
  }
});

Deno.test("apply: compaction errors and physical completion", async () => {
  const { a, store, close } = await fixture();
  try {
    const c = a.compaction(create(CompactionRequestSchema, { revision: 5n }));
    assertEquals(c.response.header?.revision, 8n);
    await c.physical;
    assertEquals(store.compactMainRev, 5);
    assertThrows(() => a.compaction(create(CompactionRequestSchema, { revision: 5n })), (e) => e === ErrGRPCCompacted);
    assertThrows(() => a.compaction(create(CompactionRequestSchema, { revision: 4n })), (e) => e === ErrGRPCCompacted);
    assertThrows(() => a.compaction(create(CompactionRequestSchema, { revision: 9n })), (e) => e === ErrGRPCFutureRev);
    await a.compaction(create(CompactionRequestSchema, { revision: 8n })).physical;
  } finally {
    await close();
  }
});

Deno.test("apply: quota and NOSPACE alarm", async () => {
  const { store, close } = await fixture();
  const a = new Applier(store, { quotaBackendBytes: store.backend.dbSize() + 300 });
  try {
    // the quota reads the database size as of the last commit, as etcd's reads bolt's size after its last commit
    assertEquals(a.quotaAvailable(260), true);
    await store.backend.forceCommit();
    assertEquals(a.quotaAvailable(260), false);
    // Over quota: applied anyway, then reported (the server raises the alarm), as etcd's quotaApplierV3.
    assertThrows(() => a.put(create(PutRequestSchema, { key: b("big"), value: b("v") })), (e) => e === ErrGRPCNoSpace);
    assertEquals(store.rev, 9);
    a.noSpaceAlarm = true;
    assertThrows(() => a.put(create(PutRequestSchema, { key: b("big"), value: b("v") })), (e) => e === ErrGRPCNoSpace);
    assertThrows(() => a.txn(txn([], [put("k", "v")])), (e) => e === ErrGRPCNoSpace);
    assertEquals(store.rev, 9);
    assertEquals(a.txn(txn([], [get("a")])).succeeded, true);
    // etcd's capped applier judges a txn by its quota cost: deletes, and puts nested in a sub-txn, go through
    assertEquals(a.txn(txn([], [del("a")])).header?.revision, 10n);
    assertEquals(a.txn(txn([], [sub(txn([], [put("n", "v")]))])).header?.revision, 11n);
    assertEquals(a.deleteRange(create(DeleteRangeRequestSchema, { key: b("big") })).deleted, 1n);
  } finally {
    await close();
  }
});
