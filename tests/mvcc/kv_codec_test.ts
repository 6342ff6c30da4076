import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { KeyValueSchema } from "../../rpc/gen/mvccpb/kv_pb.ts";
import { decodeKeyValue, encodeKeyValue, newKeyValue } from "../../mvcc/kv_codec.ts";
import { bytesToRev, isTombstone, revToBytes } from "../../mvcc/revision.ts";
import { EMPTY_BYTES } from "../../mvcc/bytes.ts";
import { assertEquals, b } from "./helpers.ts";

Deno.test("kv codec: byte-identical to protobuf encoding, round trips", () => {
  const cases = [
    newKeyValue(b("foo"), b("bar"), 2n, 3n, 2n, 0n),
    newKeyValue(b("k"), EMPTY_BYTES, 0n, 0n, 0n, 0n),
    newKeyValue(b("big"), new Uint8Array(300).fill(7), 2n ** 40n, 2n ** 52n + 5n, 1n, 0x7fffffffffffffffn),
    newKeyValue(b("neg"), b("v"), 1n, 1n, 1n, -5n),
  ];
  for (const kv of cases) {
    const mine = encodeKeyValue(kv);
    assertEquals(mine, toBinary(KeyValueSchema, kv));
    const back = decodeKeyValue(mine);
    assertEquals(back, fromBinary(KeyValueSchema, mine));
    assertEquals([back.key, back.value, back.createRevision, back.modRevision, back.version, back.lease], [
      kv.key,
      kv.value,
      kv.createRevision,
      kv.modRevision,
      kv.version,
      kv.lease,
    ]);
  }
});

Deno.test("revision encoding: etcd's 17-byte layout with tombstone mark, byte order = revision order", () => {
  const r = revToBytes(0x0102030405, 7);
  assertEquals([...r], [0, 0, 0, 1, 2, 3, 4, 5, 0x5f, 0, 0, 0, 0, 0, 0, 0, 7]);
  assertEquals(bytesToRev(r), { main: 0x0102030405, sub: 7 });
  const t = revToBytes(9, 1, true);
  assertEquals([t.length, isTombstone(t), isTombstone(r)], [18, true, false]);
  assertEquals(bytesToRev(revToBytes(2 ** 53 - 1, 0)).main, 2 ** 53 - 1);
});
