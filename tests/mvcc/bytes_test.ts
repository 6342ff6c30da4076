// What the store keeps of a put's key and value: views into a buffer that holds little else (a follower's raft entry)
// as they are; views into a larger buffer (a request among others, a replayed WAL segment, node's 8 KiB pool) copied,
// a small value together with its new key, a large one on its own.
import { equal, notEqual, ok } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ownBytes, ownKeyValue } from "../../mvcc/bytes.ts";

/** key then value in one buffer of their own, with `before` bytes of framing ahead of them (an entry's protobuf). */
function entry(key: string, value: Uint8Array, before: number) {
  const k = new TextEncoder().encode(key);
  const buf = new Uint8Array(before + k.length + value.length);
  buf.set(k, before);
  buf.set(value, before + k.length);
  const at = before + k.length;
  return { key: buf.subarray(before, at), value: buf.subarray(at), buf };
}

Deno.test("bytes: a key and value that are most of their own buffer are kept, not copied", () => {
  const e = entry("k", new Uint8Array(256).fill(7), 12);
  const owned = ownKeyValue(e.key, e.value);
  equal(owned.key, e.key);
  equal(owned.value, e.value);
  equal(ownBytes(e.value), e.value, "a value of an existing key, beside a short key, too");
});

Deno.test("bytes: views that would pin much more are copied; a large value never shares with its key", () => {
  const wide = entry("k", new Uint8Array(256).fill(7), 4096);
  const copied = ownKeyValue(wide.key, wide.value);
  notEqual(copied.key.buffer, wide.buf.buffer);
  equal(copied.key.buffer, copied.value.buffer, "a small value shares one new buffer with its key");
  equal(copied.key.buffer.byteLength, 1 + 256);
  // node's Buffer.from of a small string is a view into its 8 KiB pool
  const pooled = Buffer.from("pooled");
  notEqual(ownBytes(pooled).buffer, pooled.buffer);
  // a large value in the key's own buffer: kept apart, so an overwritten value does not live on with the key
  const large = entry("k", new Uint8Array(4096).fill(1), 12);
  const apart = ownKeyValue(large.key, large.value);
  ok(apart.key.buffer.byteLength < 64, `the key alone: ${apart.key.buffer.byteLength} bytes`);
  equal(apart.value.length, 4096);
});
