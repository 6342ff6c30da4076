import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { KeyValueSchema } from "../../rpc/gen/mvccpb/kv_pb.ts";
import { decodeKeyValue, encodeKeyValue, newKeyValue, scanKeyValue, scanned } from "../../mvcc/kv_codec.ts";
import { bytesToRev, isTombstone, revToBytes } from "../../mvcc/revision.ts";
import { EMPTY_BYTES } from "../../mvcc/bytes.ts";
import { assertEquals, assertThrows, b } from "./helpers.ts";

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

Deno.test("kv codec: scanKeyValue reads what decodeKeyValue does, in place, from a range of a larger buffer", () => {
  const cases = [
    newKeyValue(b("foo"), b("bar"), 2n, 3n, 2n, 0n),
    newKeyValue(b("k"), EMPTY_BYTES, 7n, 7n, 1n, 0n),
    newKeyValue(EMPTY_BYTES, b("v"), 1n, 1n, 1n, 0n),
    newKeyValue(b("big"), new Uint8Array(300).fill(7), 2n ** 40n, 2n ** 52n + 5n, 2n ** 53n - 1n, 0x7fffffffffffffffn),
    newKeyValue(b("neg"), b("v"), 1n, 1n, 1n, -5n),
  ];
  for (const kv of cases) {
    const enc = encodeKeyValue(kv);
    const buf = new Uint8Array(enc.length + 10).fill(0xee);
    buf.set(enc, 4);
    scanKeyValue(buf, 4, 4 + enc.length);
    assertEquals(buf.subarray(scanned.keyStart, scanned.keyEnd), kv.key);
    assertEquals([BigInt(scanned.createRevision), BigInt(scanned.version), scanned.lease], [
      kv.createRevision,
      kv.version,
      kv.lease,
    ]);
    // and decoding the same range with the key known shares that key
    const known = b(new TextDecoder().decode(kv.key));
    const back = decodeKeyValue(buf, 4, 4 + enc.length, known);
    assertEquals(back, kv);
    assertEquals(back.key === known, kv.key.length > 0); // an empty key is not encoded: nothing to share
  }
  // revisions stay below 2^53: a stored one past it is refused, as is a truncated KeyValue
  for (const kv of [newKeyValue(b("k"), b("v"), 2n ** 53n, 1n, 1n, 0n), newKeyValue(b("k"), b("v"), 1n, 1n, -1n, 0n)]) {
    const enc = encodeKeyValue(kv);
    assertThrows(() => scanKeyValue(enc, 0, enc.length), (e: unknown) => /past 2\^53/.test(String(e)));
  }
  const enc = encodeKeyValue(cases[0]);
  assertThrows(() => scanKeyValue(enc, 0, enc.length - 1), (e: unknown) => /truncated/.test(String(e)));
});
