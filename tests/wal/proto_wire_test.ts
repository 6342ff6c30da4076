import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { ProtoError, ProtoReader, ProtoWriter } from "../../wal/proto_wire.ts";

/** The varint bytes of v, written by hand (7 bits a byte, low first). */
function varintBytes(v: bigint): Uint8Array {
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return Uint8Array.from(out);
}

Deno.test("proto: 64-bit varints read back exactly, at every length and at the edges of the number path", () => {
  const values = [0n, 1n, 127n, 128n, 2n ** 28n - 1n, 2n ** 28n, 2n ** 35n + 5n, 2n ** 53n - 1n, 2n ** 53n];
  for (let bits = 1n; bits <= 64n; bits++) values.push(2n ** bits - 1n, 2n ** (bits - 1n) + 1n);
  // request IDs: a member prefix in the high 16 bits
  for (let i = 0n; i < 50n; i++) values.push((0xbeefn << 48n) | (i * 0x1234567n));
  for (const v of values) {
    const bytes = varintBytes(v);
    const r = new ProtoReader(bytes);
    assertEquals(r.uvarint64(), v);
    assertEquals(r.done(), true);
    const w = new ProtoWriter(10);
    w.uvarint64(v);
    assertEquals(w.view(), bytes);
  }
  // a tenth byte carrying bits past 63: they are dropped
  assertEquals(new ProtoReader(Uint8Array.from([...Array(9).fill(0xff), 0x7f])).uvarint64(), 2n ** 64n - 1n);
  assertThrows(() => new ProtoReader(Uint8Array.from(Array(10).fill(0x80))).uvarint64(), ProtoError);
  assertThrows(() => new ProtoReader(Uint8Array.from([0x80, 0x80])).uvarint64(), ProtoError);
});

Deno.test("proto: skipping a varint field steps over exactly its bytes, and refuses one longer than 10", () => {
  for (const v of [0n, 1n, 127n, 128n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
    const bytes = [...varintBytes(v), 0x2a];
    const r = new ProtoReader(Uint8Array.from(bytes));
    r.skip(0);
    assertEquals(r.uvarint(), 0x2a, `after ${v}`);
    assertEquals(r.done(), true);
  }
  const tooLong = new ProtoReader(Uint8Array.from([...Array(10).fill(0x80), 0x01]));
  assertThrows(() => tooLong.skip(0), (e: unknown) => e instanceof ProtoError && /longer than 10/.test(e.message));
  const cut = new ProtoReader(Uint8Array.from([0x80, 0x80]));
  assertThrows(() => cut.skip(0), (e: unknown) => e instanceof ProtoError);
});
