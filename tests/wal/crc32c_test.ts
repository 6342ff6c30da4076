import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { crc32c, crc32cUpdate } from "../../wal/crc32c.ts";

const enc = new TextEncoder();

Deno.test("crc32c: standard check value and known vectors", () => {
  assertEquals(crc32c(enc.encode("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(0)), 0);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // RFC 3720 B.4: 32 bytes of 0xff
});

Deno.test("crc32c: rolling update equals one pass over the concatenation, at every split", () => {
  const data = new Uint8Array(1000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  const whole = crc32c(data);
  for (let split = 0; split <= data.length; split += 37) {
    assertEquals(crc32cUpdate(crc32c(data.subarray(0, split)), data.subarray(split)), whole);
  }
});

Deno.test("crc32c: slicing path agrees with a bytewise reference", () => {
  const ref = (d: Uint8Array): number => {
    let c = ~0;
    for (const b of d) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
  };
  for (let n = 0; n < 70; n++) {
    const d = new Uint8Array(n);
    for (let i = 0; i < n; i++) d[i] = (i * 73 + n) & 0xff;
    assertEquals(crc32c(d), ref(d), `length ${n}`);
  }
});

Deno.test("crc32c: a range of a buffer checksums as a copy of it would", () => {
  const buf = new Uint8Array(300).map((_, i) => (i * 131 + 7) & 0xff);
  for (const [start, end] of [[0, 300], [1, 300], [3, 17], [8, 16], [5, 5], [299, 300], [7, 200]]) {
    for (const seed of [0, 0x12345678]) {
      assertEquals(crc32cUpdate(seed, buf, start, end), crc32cUpdate(seed, buf.slice(start, end)), `${start}-${end}`);
    }
  }
});

Deno.test("crc32c: the table-driven loop agrees with the bit-by-bit definition at every length and offset", () => {
  const bitwise = (crc: number, data: Uint8Array) => {
    let c = ~crc;
    for (const byte of data) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
  };
  const buf = new Uint8Array(10_000).map((_, i) => (i * 2654435761) >>> 24);
  for (let n = 0; n <= 70; n++) {
    for (const start of [0, 1, 5, 15]) {
      const part = buf.subarray(start, start + n);
      assertEquals(crc32cUpdate(7, buf, start, start + n), bitwise(7, part), `length ${n} at ${start}`);
    }
  }
  assertEquals(crc32c(buf), bitwise(0, buf));
});
