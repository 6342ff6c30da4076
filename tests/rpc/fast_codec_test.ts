// The hand-written response encoders must give exactly protobuf-es's bytes, the request decoder its messages.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  PutResponseSchema,
  RangeResponseSchema,
  SnapshotResponseSchema,
  WatchCreateRequest_FilterType,
  WatchRequestSchema,
  WatchResponseSchema,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { Event_EventType, EventSchema, KeyValueSchema } from "../../rpc/gen/mvccpb/kv_pb.ts";
import { FAST_DECODERS, FAST_FRAME_ENCODERS } from "../../rpc/fast_codec.ts";
import { encodeFrame } from "../../rpc/grpc_frame.ts";

const enc = new TextEncoder();
// etcd's default member and cluster: IDs with all 64 bits in use
const header = { clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn, revision: 123456789n, raftTerm: 2n };
const kv = (i: number) =>
  create(KeyValueSchema, {
    key: enc.encode(`key-${i}`),
    value: i % 3 === 0 ? new Uint8Array(0) : new Uint8Array(200 + i).fill(i),
    createRevision: BigInt(i + 1),
    modRevision: BigInt(i * 1000 + 5),
    version: BigInt(i % 4),
    lease: i % 5 === 0 ? 0n : BigInt(i * 7),
  });

Deno.test("fast PutResponse and RangeResponse frames equal protobuf-es's", () => {
  const cases = [
    create(PutResponseSchema, {}),
    create(PutResponseSchema, { header }),
    create(PutResponseSchema, { header, prevKv: kv(4) }),
    create(PutResponseSchema, { header: {} }),
  ];
  for (const m of cases) {
    assertEquals(FAST_FRAME_ENCODERS.get(PutResponseSchema.typeName)!(m), encodeFrame(toBinary(PutResponseSchema, m)));
  }
  const ranges = [
    create(RangeResponseSchema, { header }),
    create(RangeResponseSchema, { header, kvs: [kv(1)], count: 1n }),
    create(RangeResponseSchema, { header, kvs: Array.from({ length: 50 }, (_, i) => kv(i)), more: true, count: 5000n }),
    create(RangeResponseSchema, { header, count: 7n }),
  ];
  for (const m of ranges) {
    assertEquals(
      FAST_FRAME_ENCODERS.get(RangeResponseSchema.typeName)!(m),
      encodeFrame(toBinary(RangeResponseSchema, m)),
    );
  }
});

Deno.test("fast SnapshotResponse frames equal protobuf-es's", () => {
  const cases = [
    {},
    { remainingBytes: 12_345_678n, blob: new Uint8Array(32 * 1024).fill(7) },
    { remainingBytes: 0n, blob: new Uint8Array(32).fill(9) }, // the SHA-256 at the end
    { remainingBytes: 5n, blob: new Uint8Array(0) },
    { remainingBytes: 1n, blob: new Uint8Array(70_000).fill(1) }, // past the shared buffer
  ];
  for (const m of cases) {
    assertEquals(
      FAST_FRAME_ENCODERS.get(SnapshotResponseSchema.typeName)!(m),
      encodeFrame(toBinary(SnapshotResponseSchema, create(SnapshotResponseSchema, m))),
    );
  }
  // a header is left to the generic encoder
  assertEquals(FAST_FRAME_ENCODERS.get(SnapshotResponseSchema.typeName)!({ header }), undefined);
});

Deno.test("init objects with fields left out encode like create() would make them", () => {
  const put = { header: { revision: 5n } };
  assertEquals(
    FAST_FRAME_ENCODERS.get(PutResponseSchema.typeName)!(put),
    encodeFrame(toBinary(PutResponseSchema, create(PutResponseSchema, put))),
  );
  const range = { count: 42n };
  assertEquals(
    FAST_FRAME_ENCODERS.get(RangeResponseSchema.typeName)!(range),
    encodeFrame(toBinary(RangeResponseSchema, create(RangeResponseSchema, range))),
  );
  // a KeyValue that is not a full message is left to the generic encoder
  assertEquals(FAST_FRAME_ENCODERS.get(RangeResponseSchema.typeName)!({ kvs: [{ key: enc.encode("k") }] }), undefined);
});

Deno.test("64-bit leases and IDs encode exactly; revisions beyond 2^53 fall back", () => {
  const big = create(RangeResponseSchema, {
    header,
    kvs: [create(KeyValueSchema, { key: enc.encode("k"), lease: 2n ** 62n + 7n })],
  });
  const bytes = FAST_FRAME_ENCODERS.get(RangeResponseSchema.typeName)!(big);
  assertEquals(bytes, encodeFrame(toBinary(RangeResponseSchema, big)));
  const neg = create(PutResponseSchema, { header: { ...header, revision: -1n } });
  assertEquals(FAST_FRAME_ENCODERS.get(PutResponseSchema.typeName)!(neg), undefined);
  for (const ids of [{ clusterId: 2n ** 60n }, { memberId: 1n }, { clusterId: 0n, memberId: 2n ** 64n - 1n }]) {
    const m = create(PutResponseSchema, { header: { ...header, ...ids } });
    assertEquals(FAST_FRAME_ENCODERS.get(PutResponseSchema.typeName)!(m), encodeFrame(toBinary(PutResponseSchema, m)));
  }
  const huge = create(PutResponseSchema, { header: { ...header, revision: 2n ** 60n } });
  assertEquals(FAST_FRAME_ENCODERS.get(PutResponseSchema.typeName)!(huge), undefined);
});

Deno.test("fast WatchResponse frames equal protobuf-es's; negative IDs and cancel reasons fall back", () => {
  const put = create(EventSchema, { kv: kv(1) });
  const del = create(EventSchema, { type: Event_EventType.DELETE, kv: kv(3), prevKv: kv(2) });
  const cases = [
    create(WatchResponseSchema, { header, created: true }),
    create(WatchResponseSchema, { header, watchId: 7n, events: [put] }),
    create(WatchResponseSchema, { header, watchId: 300n, events: [put, del, put], fragment: true }),
    create(WatchResponseSchema, { header, watchId: 2n, canceled: true, compactRevision: 99n }),
    create(WatchResponseSchema, {
      header,
      events: Array.from({ length: 40 }, (_, i) => create(EventSchema, { kv: kv(i) })),
    }),
  ];
  const encode = FAST_FRAME_ENCODERS.get(WatchResponseSchema.typeName)!;
  for (const m of cases) assertEquals(encode(m), encodeFrame(toBinary(WatchResponseSchema, m)));
  // a revision fanned out: responses sharing the header and the events array (the encoder reuses their bytes)
  const shared = [put, del];
  for (const watchId of [0n, 1n, 2n, 1000n]) {
    const m = create(WatchResponseSchema, { header, watchId, events: shared });
    assertEquals(encode(m), encodeFrame(toBinary(WatchResponseSchema, m)));
  }
  assertEquals(encode(create(WatchResponseSchema, { header, watchId: -1n })), undefined);
  assertEquals(encode(create(WatchResponseSchema, { created: true, canceled: true, cancelReason: "x" })), undefined);
});

Deno.test("fast WatchRequest decoding equals protobuf-es's; what it does not cover steps aside", () => {
  const decode = FAST_DECODERS.get(WatchRequestSchema.typeName)!;
  const { NOPUT, NODELETE } = WatchCreateRequest_FilterType;
  const full = {
    key: enc.encode("a"),
    rangeEnd: enc.encode("b"),
    startRevision: 77n,
    progressNotify: true,
    filters: [NOPUT, NODELETE],
    prevKv: true,
    watchId: 9n,
    fragment: true,
  };
  const covered = [
    create(WatchRequestSchema, {}),
    create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: {} } }),
    create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: full } }),
    create(WatchRequestSchema, {
      requestUnion: { case: "createRequest", value: { key: enc.encode("k"), filters: [NODELETE] } },
    }),
    create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: 3n } } }),
    create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: {} } }),
    create(WatchRequestSchema, { requestUnion: { case: "progressRequest", value: {} } }),
  ];
  for (const m of covered) {
    const bytes = toBinary(WatchRequestSchema, m);
    assertEquals(decode(bytes), fromBinary(WatchRequestSchema, bytes));
  }
  // filters unpacked (as some encoders write them) decode the same
  assertEquals(
    decode(Uint8Array.of(0x0a, 0x04, 0x28, 0x00, 0x28, 0x01)),
    fromBinary(WatchRequestSchema, Uint8Array.of(0x0a, 0x04, 0x28, 0x00, 0x28, 0x01)),
  );
  const aside = [
    create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { startRevision: -1n } } }),
    create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { watchId: 1n << 60n } } }),
    create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: -1n } } }),
    create(WatchRequestSchema, {
      requestUnion: { case: "createRequest", value: { filters: [7 as WatchCreateRequest_FilterType] } },
    }),
  ];
  for (const m of aside) assertEquals(decode(toBinary(WatchRequestSchema, m)), undefined);
  assertEquals(decode(Uint8Array.of(0x0a, 0x02, 0x48, 0x01)), undefined, "unknown field 9");
  assertEquals(decode(Uint8Array.of(0x0a, 0x00, 0x1a, 0x00)), undefined, "the oneof twice");
  assertEquals(decode(Uint8Array.of(0x0a, 0x05, 0x0a)), undefined, "truncated");
});
