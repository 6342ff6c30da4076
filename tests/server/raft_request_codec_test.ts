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
import { ProtoWriter } from "../../wal/proto_wire.ts";

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

/** Entries 3 and 4 of a WAL Debian's etcd 3.4.23 wrote: its publish and the cluster version, bare v2 Requests. */
const ETCD_PUBLISH = hex(
  "08 82 d2 cd 9f b2 c9 a8 d7 43 12 03 50 55 54 1a 26 2f 30 2f 6d 65 6d 62 65 72 73 2f 39 64 31 34 38 35 65 63 33 61 " +
    "66 34 34 33 61 65 2f 61 74 74 72 69 62 75 74 65 73 22 3a 7b 22 6e 61 6d 65 22 3a 22 64 65 66 61 75 6c 74 22 2c " +
    "22 63 6c 69 65 6e 74 55 52 4c 73 22 3a 5b 22 68 74 74 70 3a 2f 2f 31 32 37 2e 30 2e 30 2e 31 3a 32 33 37 39 36 " +
    "22 5d 7d 28 00 32 00 38 00 48 00 50 00 58 00 60 00 68 00 70 00 78 00 80 01 00",
);
const ETCD_VERSION = hex(
  "08 84 d2 cd 9f b2 c9 a8 d7 43 12 03 50 55 54 1a 0a 2f 30 2f 76 65 72 73 69 6f 6e 22 05 33 2e 34 2e 30 28 00 32 00 " +
    "38 00 48 00 50 00 58 00 60 00 68 00 70 00 78 00 80 01 00",
);

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.split(" ").map((b) => parseInt(b, 16)));
}

/** A bare v2 Request of etcd's: ID, Method, Path, Val. */
function v2(id: bigint, method: string, path: string, val: string): Uint8Array {
  const w = new ProtoWriter();
  w.uvarint64Field(1, id);
  w.bytesField(2, enc.encode(method));
  w.bytesField(3, enc.encode(path));
  w.bytesField(4, enc.encode(val));
  return w.view();
}

Deno.test("etcd 3.4's membership records (bare v2 PUTs) decode to the requests detcd applies, and are told apart", () => {
  const publish = decodeRequest(ETCD_PUBLISH);
  assertEquals(publish.clusterMemberAttrSet?.memberID, 0x9d1485ec3af443aen);
  assertEquals(publish.clusterMemberAttrSet?.memberAttributes?.name, "default");
  assertEquals(publish.clusterMemberAttrSet?.memberAttributes?.clientUrls, ["http://127.0.0.1:23796"]);
  assertEquals(decodeRequest(ETCD_VERSION).clusterVersionSet?.ver, "3.4.0");
  assertEquals([isMembershipRecord(ETCD_PUBLISH), isMembershipRecord(ETCD_VERSION)], [true, true]);
  // what else a v2 Request may hold applies as nothing: its ID alone
  for (const other of [v2(9n, "SYNC", "", ""), v2(10n, "PUT", "/1/foo", "bar"), v2(11n, "DELETE", "/0/version", "")]) {
    const req = decodeRequest(other);
    assertEquals(Object.keys(req).filter((k) => (req as unknown as Record<string, unknown>)[k] !== undefined).sort(), [
      "$typeName",
      "ID",
    ]);
    assertEquals(isMembershipRecord(other), false);
  }
});

Deno.test("detcd logs its membership records as etcd 3.4 does, so an etcd member can apply them", () => {
  const attr = create(InternalRaftRequestSchema, {
    ID: 0x4d2n,
    clusterMemberAttrSet: create(ClusterMemberAttrSetRequestSchema, {
      memberID: 0x9d1485ec3af443aen,
      memberAttributes: create(MemberAttributesSchema, { name: "default", clientUrls: ["http://127.0.0.1:23796"] }),
    }),
  });
  assertEquals(
    encodeRequest(attr),
    v2(
      0x4d2n,
      "PUT",
      "/0/members/9d1485ec3af443ae/attributes",
      '{"name":"default","clientURLs":["http://127.0.0.1:23796"]}',
    ),
  );
  // etcd's Attributes leave out an empty name and no client URLs (omitempty)
  const bare = create(InternalRaftRequestSchema, {
    ID: 1n,
    clusterMemberAttrSet: create(ClusterMemberAttrSetRequestSchema, { memberID: 0xabn }),
  });
  assertEquals(encodeRequest(bare), v2(1n, "PUT", "/0/members/ab/attributes", "{}"));
  const version = create(InternalRaftRequestSchema, {
    ID: 2n,
    clusterVersionSet: create(ClusterVersionSetRequestSchema, { ver: "3.4.0" }),
  });
  assertEquals(encodeRequest(version), v2(2n, "PUT", "/0/version", "3.4.0"));
  // detcd's earlier records (etcd 3.5's fields) still decode
  const old = toBinary(InternalRaftRequestSchema, version);
  assertEquals(decodeRequest(old).clusterVersionSet?.ver, "3.4.0");
  assertEquals(isMembershipRecord(old), true);
});
