import { create } from "@bufbuild/protobuf";
import {
  CompareSchema,
  DeleteRangeRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  type RequestOp,
  RequestOpSchema,
  TxnRequestSchema,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import {
  checkDeleteRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  costTxn,
  validateTxnRequest,
} from "../../server/apply.ts";
import {
  ErrGRPCDuplicateKey,
  ErrGRPCEmptyKey,
  ErrGRPCKeyNotFound,
  ErrGRPCLeaseProvided,
  ErrGRPCNoSpace,
  ErrGRPCTooManyOps,
  ErrGRPCValueProvided,
  ERRORS_BY_MESSAGE,
  GrpcCode,
  RpcError,
} from "../../server/apply_errors.ts";
import { assert, assertEquals, b } from "../mvcc/helpers.ts";

const put = (k: string): RequestOp =>
  create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key: b(k) }) } });
const del = (k: string, end?: string): RequestOp =>
  create(RequestOpSchema, {
    request: {
      case: "requestDeleteRange",
      value: create(DeleteRangeRequestSchema, { key: b(k), rangeEnd: end === undefined ? undefined : b(end) }),
    },
  });
const get = (k: string): RequestOp =>
  create(RequestOpSchema, { request: { case: "requestRange", value: create(RangeRequestSchema, { key: b(k) }) } });
const sub = (success: RequestOp[], failure: RequestOp[] = []): RequestOp =>
  create(RequestOpSchema, {
    request: { case: "requestTxn", value: create(TxnRequestSchema, { success, failure }) },
  });
const txn = (success: RequestOp[], failure: RequestOp[] = []) => create(TxnRequestSchema, { success, failure });

Deno.test("validate: single requests", () => {
  assertEquals(checkRangeRequest(create(RangeRequestSchema, {})), ErrGRPCEmptyKey);
  assertEquals(checkRangeRequest(create(RangeRequestSchema, { key: b("a") })), null);
  assertEquals(checkDeleteRequest(create(DeleteRangeRequestSchema, {})), ErrGRPCEmptyKey);
  assertEquals(checkPutRequest(create(PutRequestSchema, {})), ErrGRPCEmptyKey);
  assertEquals(
    checkPutRequest(create(PutRequestSchema, { key: b("a"), value: b("v"), ignoreValue: true })),
    ErrGRPCValueProvided,
  );
  assertEquals(
    checkPutRequest(create(PutRequestSchema, { key: b("a"), lease: 1n, ignoreLease: true })),
    ErrGRPCLeaseProvided,
  );
  assertEquals(checkPutRequest(create(PutRequestSchema, { key: b("a"), ignoreValue: true })), null);
});

Deno.test("validate: txn op limits, empty keys and empty ops", () => {
  assertEquals(checkTxnRequest(txn([put("a"), put("b"), put("c")]), 2), ErrGRPCTooManyOps);
  assertEquals(checkTxnRequest(txn([put("a"), put("b")], [put("c")]), 2), null);
  // Nested txns share what is left of the budget.
  assertEquals(checkTxnRequest(txn([sub([put("x"), put("y")])]), 2), ErrGRPCTooManyOps);
  assertEquals(checkTxnRequest(txn([sub([put("x")])]), 2), null);
  const emptyCompare = create(TxnRequestSchema, { compare: [create(CompareSchema, {})] });
  assertEquals(checkTxnRequest(emptyCompare, 128), ErrGRPCEmptyKey);
  assertEquals(checkTxnRequest(txn([put("")]), 128), ErrGRPCEmptyKey);
  assertEquals(checkTxnRequest(txn([create(RequestOpSchema, {})]), 128), ErrGRPCKeyNotFound);
});

Deno.test("validate: duplicate keys in txn (etcd checkIntervals)", () => {
  const table: [string, RequestOp[], RequestOp[], RpcError | null][] = [
    ["two puts of one key", [put("a"), put("a")], [], ErrGRPCDuplicateKey],
    ["puts on both branches are fine", [put("a")], [put("a")], null],
    ["put and delete of the key", [del("a"), put("a")], [], ErrGRPCDuplicateKey],
    ["put inside a deleted range", [del("a", "c"), put("b")], [], ErrGRPCDuplicateKey],
    ["put at the range end is outside", [del("a", "c"), put("c")], [], null],
    ["delete from key ('\\0' end) is not an interval etcd checks", [del("a", "\0"), put("b")], [], null],
    ["two deletes are fine", [del("a"), del("a")], [], null],
    ["reads never conflict", [get("a"), put("a")], [], null],
    ["nested put repeats an outer put", [put("a"), sub([put("a")])], [], ErrGRPCDuplicateKey],
    ["nested then/else may repeat each other", [sub([put("a")], [put("a")])], [], null],
    ["nested else repeats a sibling's put", [sub([put("a")]), sub([], [put("a")])], [], ErrGRPCDuplicateKey],
    ["nested put under an outer delete", [del("a", "z"), sub([put("b")])], [], ErrGRPCDuplicateKey],
    ["outer put under a nested delete", [sub([del("a", "z")]), put("b")], [], ErrGRPCDuplicateKey],
  ];
  for (const [name, success, failure, want] of table) {
    assertEquals(validateTxnRequest(txn(success, failure), 128), want, name);
  }
});

Deno.test("rpc errors: codes, texts, lookup by message; txn quota cost", () => {
  assertEquals([ErrGRPCNoSpace.code, ErrGRPCNoSpace.message], [
    GrpcCode.ResourceExhausted,
    "etcdserver: mvcc: database space exceeded",
  ]);
  assert(ErrGRPCNoSpace instanceof RpcError && ErrGRPCNoSpace instanceof Error);
  assertEquals(ERRORS_BY_MESSAGE.size, 52);
  assertEquals(ERRORS_BY_MESSAGE.get("etcdserver: duplicate key given in txn request"), ErrGRPCDuplicateKey);
  assertEquals(costTxn(txn([put("ab"), get("x")], [put("a"), put("b")])), 2 * 257);
});
