/**
 * Binary encoding of mvccpb.KeyValue for the "key" bucket, byte-identical to etcd's gogo-protobuf Marshal
 * (fields in number order, zero values omitted) so HashKV matches etcd for the same history. Hand-written because
 * it runs once per write and per restored revision.
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { EMPTY_BYTES } from "./bytes.ts";

export function newKeyValue(
  key: Uint8Array,
  value: Uint8Array,
  createRevision: bigint,
  modRevision: bigint,
  version: bigint,
  lease: bigint,
): KeyValue {
  return { $typeName: "mvccpb.KeyValue", key, createRevision, modRevision, version, value, lease };
}

function varintLen(n: bigint): number {
  let v = BigInt.asUintN(64, n);
  let len = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    len++;
  }
  return len;
}

function numVarintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  tag(t: number): void {
    this.buf[this.pos++] = t;
  }

  num(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  big(n: bigint): void {
    let v = BigInt.asUintN(64, n);
    if (v <= 0x1fffffffffffffn) return this.num(Number(v));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  bytes(b: Uint8Array): void {
    this.num(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/** Length of encodeKeyValue(kv). */
export function encodedKeyValueSize(kv: KeyValue): number {
  let size = 0;
  if (kv.key.length > 0) size += 1 + numVarintLen(kv.key.length) + kv.key.length;
  if (kv.createRevision !== 0n) size += 1 + varintLen(kv.createRevision);
  if (kv.modRevision !== 0n) size += 1 + varintLen(kv.modRevision);
  if (kv.version !== 0n) size += 1 + varintLen(kv.version);
  if (kv.value.length > 0) size += 1 + numVarintLen(kv.value.length) + kv.value.length;
  if (kv.lease !== 0n) size += 1 + varintLen(kv.lease);
  return size;
}

/** Encodes kv as protobuf bytes. */
export function encodeKeyValue(kv: KeyValue): Uint8Array {
  const size = encodedKeyValueSize(kv);
  const buf = new Uint8Array(size);
  if (writeKeyValue(buf, 0, kv) !== size) throw new Error("mvcc: KeyValue size mismatch");
  return buf;
}

/**
 * Writes kv's encoding into buf at pos (which must have encodedKeyValueSize(kv) bytes free) and returns the
 * position after it; the gRPC layer uses it to put KeyValues straight into a response frame.
 */
export function writeKeyValue(buf: Uint8Array, pos: number, kv: KeyValue): number {
  const w = new Writer(buf);
  w.pos = pos;
  if (kv.key.length > 0) {
    w.tag(0x0a);
    w.bytes(kv.key);
  }
  if (kv.createRevision !== 0n) {
    w.tag(0x10);
    w.big(kv.createRevision);
  }
  if (kv.modRevision !== 0n) {
    w.tag(0x18);
    w.big(kv.modRevision);
  }
  if (kv.version !== 0n) {
    w.tag(0x20);
    w.big(kv.version);
  }
  if (kv.value.length > 0) {
    w.tag(0x2a);
    w.bytes(kv.value);
  }
  if (kv.lease !== 0n) {
    w.tag(0x30);
    w.big(kv.lease);
  }
  return w.pos;
}

/** BigInts are heap objects: versions and small leases decode to shared ones instead of one each. */
const SMALL_BIGINTS: bigint[] = Array.from({ length: 1024 }, (_, i) => BigInt(i));

/** decodeKeyValue's read position and end: a cursor of the module, not a closure per call (it is not reentrant). */
let at = 0;
let limit = 0;

function readVarint(b: Uint8Array): bigint {
  let lo = 0, shift = 0;
  // Fast path for values below 2^49, the common case for revisions and versions.
  while (shift < 49) {
    if (at >= limit) throw new Error("mvcc: truncated KeyValue");
    const c = b[at++];
    lo += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) return lo < SMALL_BIGINTS.length ? SMALL_BIGINTS[lo] : BigInt(lo);
    shift += 7;
  }
  let v = BigInt(lo);
  for (let s = 49n;; s += 7n) {
    if (at >= limit || s > 63n) throw new Error("mvcc: bad varint in KeyValue");
    const c = b[at++];
    v |= BigInt(c & 0x7f) << s;
    if (c < 0x80) return BigInt.asIntN(64, v);
  }
}

/** Steps over a length-prefixed field; returns where its bytes start (they end at `at`). */
function skipBytes(b: Uint8Array): number {
  const n = Number(readVarint(b));
  if (at + n > limit) throw new Error("mvcc: truncated KeyValue");
  at += n;
  return at - n;
}

/** A varint as a number: revisions and versions stay below 2^53 (revision.ts), so a larger one is a defect. */
function readNumberVarint(b: Uint8Array): number {
  let n = 0;
  for (let shift = 0; shift < 56; shift += 7) {
    if (at >= limit) throw new Error("mvcc: truncated KeyValue");
    const c = b[at++];
    n += (c & 0x7f) * 2 ** shift;
    if (c < 0x80 && n <= Number.MAX_SAFE_INTEGER) return n;
    if (c < 0x80) break;
  }
  throw new Error("mvcc: a revision or version past 2^53 in KeyValue");
}

/**
 * What a restore needs of a stored KeyValue before its value is read (scanKeyValue): where its key lies, its create
 * revision and version as numbers, its lease. One object, reused by every call.
 */
export const scanned = { keyStart: 0, keyEnd: 0, createRevision: 0, version: 0, lease: 0n };

/**
 * Reads the fields of the KeyValue at b[start, end) into `scanned` without making its KeyValue, value view or revision
 * BigInts (decodeKeyValue makes them when the value is read). Throws on malformed bytes as decodeKeyValue does.
 */
export function scanKeyValue(b: Uint8Array, start: number, end: number): void {
  at = start;
  limit = end;
  scanned.keyStart = scanned.keyEnd = start;
  scanned.createRevision = scanned.version = 0;
  scanned.lease = 0n;
  while (at < end) {
    const tag = b[at++];
    switch (tag) {
      case 0x0a:
        scanned.keyStart = skipBytes(b);
        scanned.keyEnd = at;
        break;
      case 0x10:
        scanned.createRevision = readNumberVarint(b);
        break;
      case 0x18:
        readNumberVarint(b);
        break;
      case 0x20:
        scanned.version = readNumberVarint(b);
        break;
      case 0x2a:
        skipBytes(b);
        break;
      case 0x30:
        scanned.lease = readVarint(b);
        break;
      default:
        throw new Error(`mvcc: unexpected tag ${tag} in KeyValue`);
    }
  }
}

function readBytes(b: Uint8Array): Uint8Array {
  const start = skipBytes(b);
  return at === start ? EMPTY_BYTES : b.subarray(start, at);
}

/**
 * Decodes the protobuf bytes b[start, end) into a KeyValue whose key and value are views into `b`, which the caller
 * must own and not modify: one allocation then holds both, instead of one each. `knownKey`, when given, is the key
 * the bytes hold (a restored revision's key index has it): it is used instead of a view of them.
 */
export function decodeKeyValue(b: Uint8Array, start = 0, end = b.length, knownKey?: Uint8Array): KeyValue {
  at = start;
  limit = end;
  let key = EMPTY_BYTES, value = EMPTY_BYTES;
  let createRevision = 0n, modRevision = 0n, version = 0n, lease = 0n;
  while (at < end) {
    const tag = b[at++];
    switch (tag) {
      case 0x0a:
        if (knownKey === undefined) key = readBytes(b);
        else {
          key = knownKey;
          skipBytes(b);
        }
        break;
      case 0x10:
        createRevision = readVarint(b);
        break;
      case 0x18:
        modRevision = readVarint(b);
        break;
      case 0x20:
        version = readVarint(b);
        break;
      case 0x2a:
        value = readBytes(b);
        break;
      case 0x30:
        lease = readVarint(b);
        break;
      default:
        throw new Error(`mvcc: unexpected tag ${tag} in KeyValue`);
    }
  }
  // a key's first version: one BigInt for both revisions
  if (modRevision === createRevision) modRevision = createRevision;
  return newKeyValue(key, value, createRevision, modRevision, version, lease);
}

/** Tombstones (version 0) are stored in the "key" bucket as a KeyValue holding only the key, like etcd's. */
function storedForm(kv: KeyValue): KeyValue {
  return kv.version === 0n ? newKeyValue(kv.key, EMPTY_BYTES, 0n, 0n, 0n, 0n) : kv;
}

/** The "key" bucket value of a change (a put or a tombstone as kept by the index). */
export function storedValue(kv: KeyValue): Uint8Array {
  return encodeKeyValue(storedForm(kv));
}

/** storedValue(kv) written into buf at pos; returns the position after it. */
export function writeStoredValue(buf: Uint8Array, pos: number, kv: KeyValue): number {
  return writeKeyValue(buf, pos, storedForm(kv));
}

/** Length of storedValue(kv). */
export function storedValueSize(kv: KeyValue): number {
  return encodedKeyValueSize(storedForm(kv));
}
