// The hand-written put encoding must give protobuf-es's bytes exactly, and the hand-written
// decoding protobuf-es's messages exactly, for whatever another member or an older WAL wrote.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ClusterMemberAttrSetRequestSchema,
  ClusterVersionSetRequestSchema,
  InternalRaftRequestSchema,
  MemberAttributesSchema,
} from "../../rpc/gen/etcdserverpb/raft_internal_pb.ts";
import { CompactionRequestSchema, PutRequestSchema } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { decodeRequest, encodeRequest, isMembershipRecord, peekRequestId } from "../../server/raft_request_codec.ts";
import { IdGenerator } from "../../server/id_generator.ts";

const enc = new TextEncoder();

Deno.test("hand-encoded puts equal protobuf-es's encoding and decode back", () => {
  const ids = new IdGenerator(0x8e9e05c52164694dn, Date.now());
  const puts = [
    { key: enc.encode("k"), value: enc.encode("v") },
    { key: enc.encode("k".repeat(300)), value: new Uint8Array(70_000) },
    { key: enc.encode("k"), prevKv: true, ignoreValue: true, ignoreLease: true },
    { key: enc.encode("k") },
  ];
  for (const p of puts) {
    const id = ids.next();
    const req = create(InternalRaftRequestSchema, { ID: ids.full(id), put: create(PutRequestSchema, p) });
    const mine = encodeRequest(req);
    assertEquals(mine, toBinary(InternalRaftRequestSchema, req));
    assertEquals(fromBinary(InternalRaftRequestSchema, mine).put, req.put);
    assertEquals(peekRequestId(mine, ids.prefix), id);
    assertEquals(peekRequestId(mine, ids.prefix ^ 1), -1, "another member's");
  }
});

Deno.test("other requests and puts with a lease take protobuf-es's path, ids still peekable", () => {
  const withLease = create(InternalRaftRequestSchema, {
    ID: 7n,
    put: create(PutRequestSchema, { key: enc.encode("k"), lease: 0x694d7a1b2c3d4e5fn }),
  });
  assertEquals(encodeRequest(withLease), toBinary(InternalRaftRequestSchema, withLease));
  const compact = create(InternalRaftRequestSchema, {
    ID: 9n,
    compaction: create(CompactionRequestSchema, { revision: 5n }),
  });
  assertEquals(encodeRequest(compact), toBinary(InternalRaftRequestSchema, compact));
  assertEquals(peekRequestId(encodeRequest(compact), 0), 9);
  // every prefix, every suffix width: the peeked halves are exact
  for (const prefix of [0, 1, 0x694d, 0x8000, 0xffff]) {
    for (const suffix of [1, 127, 128, 2 ** 35 + 5, 2 ** 48 - 1]) {
      const id = (BigInt(prefix) << 48n) | BigInt(suffix);
      const data = encodeRequest(create(InternalRaftRequestSchema, { ID: id, compaction: {} }));
      assertEquals(peekRequestId(data, prefix), suffix, id.toString(16));
    }
  }
  assertEquals(peekRequestId(encodeRequest(create(InternalRaftRequestSchema, { compaction: {} })), 0), -1);
});

Deno.test("decoded requests equal protobuf-es's: puts by hand, the rest through it", () => {
  const same = (data: Uint8Array, what: string) =>
    assertEquals(decodeRequest(data), fromBinary(InternalRaftRequestSchema, data), what);
  const put = (p: Parameters<typeof create<typeof PutRequestSchema>>[1], id = 7n) =>
    toBinary(
      InternalRaftRequestSchema,
      create(InternalRaftRequestSchema, { ID: id, put: create(PutRequestSchema, p) }),
    );
  same(put({ key: enc.encode("k"), value: enc.encode("v") }), "a put");
  same(put({ key: enc.encode("k"), value: new Uint8Array(70_000).fill(1) }, 2n ** 64n - 1n), "a large one, a high ID");
  same(put({ key: enc.encode("k"), lease: -5n, prevKv: true, ignoreValue: true, ignoreLease: true }), "every field");
  same(put({ key: enc.encode("k") }, 0n), "no ID, no value");
  // the same field twice: the last wins; unknown fields and a second put are protobuf-es's (kept, merged)
  const twice = new Uint8Array([...put({ key: enc.encode("a") }), 0x22, 3, 0x0a, 1, 0x62]);
  same(twice, "a second put, merged");
  const keyTwice = new Uint8Array([0x22, 6, 0x0a, 1, 0x61, 0x0a, 1, 0x62]);
  assertEquals(decodeRequest(keyTwice).put?.key, enc.encode("b"));
  same(keyTwice, "a key twice");
  same(new Uint8Array([...put({ key: enc.encode("k") }), 0xf8, 0x3f, 1]), "an unknown field");
  same(new Uint8Array([0x22, 2, 0x38, 1]), "an unknown put field");
  same(
    toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, { ID: 9n, compaction: { revision: 5n } })),
    "a compaction",
  );
});

Deno.test("ids are laid out as etcd's idutil: member's low 16 bits, 40 bits of ms, a counter; unique", () => {
  const t = 1_700_000_000_000;
  const a = new IdGenerator(0xabcd1234n, t);
  assertEquals(a.nextBig(), (0x1234n << 48n) | ((BigInt(t) & (2n ** 40n - 1n)) << 8n) + 1n);
  const seen = new Set<bigint>();
  for (let i = 0; i < 10_000; i++) {
    const big = a.nextBig();
    assertEquals(big >> 48n, 0x1234n);
    seen.add(big);
    // next(): the next ID's low 48 bits; full() and ownSuffix() go between the two
    const id = a.next();
    assertEquals(a.full(id), big + 1n);
    assertEquals(a.ownSuffix(big + 1n), id);
    assertEquals(a.ownSuffix(big + 1n + (1n << 48n)), -1);
    seen.add(big + 1n);
  }
  assertEquals(seen.size, 20_000);
});

Deno.test("membership records are told from their field tags, as decoding would tell them", () => {
  const ids = new IdGenerator(0x8e9e05c52164694dn, Date.now());
  const reqs = [
    create(InternalRaftRequestSchema, {
      ID: ids.full(ids.next()),
      put: create(PutRequestSchema, { key: enc.encode("k") }),
    }),
    create(InternalRaftRequestSchema, {
      ID: ids.full(ids.next()),
      compaction: create(CompactionRequestSchema, { revision: 5n }),
    }),
    create(InternalRaftRequestSchema, { clusterVersionSet: create(ClusterVersionSetRequestSchema, { ver: "3.4.0" }) }),
    create(InternalRaftRequestSchema, {
      ID: ids.full(ids.next()),
      clusterVersionSet: create(ClusterVersionSetRequestSchema),
    }),
    create(InternalRaftRequestSchema, {
      ID: ids.full(ids.next()),
      clusterMemberAttrSet: create(ClusterMemberAttrSetRequestSchema, {
        memberID: 7n,
        memberAttributes: create(MemberAttributesSchema, { name: "m1", clientUrls: ["http://127.0.0.1:2379"] }),
      }),
    }),
  ];
  for (const req of reqs) {
    const data = encodeRequest(req);
    const decoded = decodeRequest(data);
    const membership = decoded.clusterVersionSet !== undefined || decoded.clusterMemberAttrSet !== undefined;
    assertEquals(isMembershipRecord(data), membership, JSON.stringify(Object.keys(decoded)));
  }
  assertEquals(reqs.map((r) => isMembershipRecord(encodeRequest(r))), [false, false, true, true, true]);
});
