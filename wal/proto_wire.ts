// Protobuf wire-format primitives (varints, tags, length-delimited fields) on plain
// numbers. Unsigned 64-bit values are limited to 2^53 because the raft types use JS
// numbers; anything larger is rejected on decode rather than silently rounded.

export const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

const TWO_POW_31 = 0x80000000;
const EMPTY = new Uint8Array(0);

export class ProtoError extends Error {
  override name = "ProtoError";
}

/**
 * What a hand-written decoder reads from `bytes`, or undefined when they are not what it reads (it returns undefined
 * itself for what it leaves to the generic decoder): the generic one then decodes them, and words the error.
 */
export function decodeOrStepAside<T>(bytes: Uint8Array, decode: (r: ProtoReader) => T | undefined): T | undefined {
  try {
    return decode(new ProtoReader(bytes));
  } catch (e) {
    if (e instanceof ProtoError) return undefined;
    throw e;
  }
}

function assertUint(v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ProtoError(`proto: ${v} is not an unsigned integer below 2^53`);
}

/** Bytes a varint of `v` takes. */
export function uvarintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Bytes a length-delimited field with a one-byte tag and `len` payload bytes takes. */
export function bytesFieldSize(len: number): number {
  return 1 + uvarintSize(len) + len;
}

/** Bytes a 64-bit varint of `v` takes (negative: its two's complement, 10 bytes). */
export function uvarint64Size(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  if (u <= BigInt(Number.MAX_SAFE_INTEGER)) return uvarintSize(Number(u));
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

/** Bytes a varint field with a one-byte tag takes (field numbers here are all < 16). */
export function varintFieldSize(v: number): number {
  return 1 + uvarintSize(v);
}

/** Writes into a buffer; grows on demand so callers may size exactly or guess. */
export class ProtoWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  uvarint(v: number): void {
    assertUint(v);
    // Exact reservation near the end keeps exactly-sized buffers from growing.
    if (this.pos + 10 > this.buf.length) this.reserve(uvarintSize(v));
    const b = this.buf;
    let p = this.pos;
    while (v >= TWO_POW_31) {
      b[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  tag(field: number, wire: number): void {
    this.uvarint((field << 3) | wire);
  }

  /** A 64-bit varint (int64 or uint64: negative values take their two's complement, as protobuf writes them). */
  uvarint64(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    if (u <= BigInt(Number.MAX_SAFE_INTEGER)) return this.uvarint(Number(u));
    this.reserve(10);
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  varintField(field: number, v: number): void {
    this.tag(field, WIRE_VARINT);
    this.uvarint(v);
  }

  uvarint64Field(field: number, v: bigint): void {
    this.tag(field, WIRE_VARINT);
    this.uvarint64(v);
  }

  bytesField(field: number, data: Uint8Array): void {
    this.tag(field, WIRE_BYTES);
    this.uvarint(data.length);
    this.raw(data);
  }

  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** The bytes written so far, as a view (valid until the next write). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** Reads a slice of a buffer; byte fields come back as zero-copy views into it. */
export class ProtoReader {
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  private byte(): number {
    if (this.pos >= this.end) throw new ProtoError("proto: unexpected end of message");
    return this.buf[this.pos++];
  }

  uvarint(): number {
    let b = this.byte();
    if (b < 0x80) return b;
    let v = b & 0x7f;
    for (let shift = 7; shift < 28; shift += 7) {
      b = this.byte();
      v |= (b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    // Past 28 bits, bitwise ops would overflow int32: accumulate in floating point.
    let mul = 0x10000000;
    for (let i = 4; i < 10; i++) {
      b = this.byte();
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new ProtoError("proto: varint exceeds 2^53");
        return v;
      }
      mul *= 128;
    }
    throw new ProtoError("proto: varint longer than 10 bytes");
  }

  bool(): boolean {
    return this.uvarint() !== 0;
  }

  /** A varint of up to 64 bits, exact, as int64 (values from 2^63 up come back negative). */
  varint64(): bigint {
    return BigInt.asIntN(64, this.uvarint64());
  }

  /** A varint of up to 64 bits, exact, as uint64 (node, cluster and request IDs). */
  uvarint64(): bigint {
    // bits 0-27 and 28-69 gathered as numbers (both exact): one BigInt below 2^53, three above. A BigInt op per byte
    // was ~30 allocations for every request ID a follower applies.
    let lo = 0, hi = 0, b = 0, n = 0;
    do {
      b = this.byte();
      if (n < 4) lo |= (b & 0x7f) << (7 * n);
      else hi += (b & 0x7f) * 2 ** (7 * n - 28);
      n++;
    } while (b >= 0x80 && n < 10);
    if (b >= 0x80) throw new ProtoError("proto: varint longer than 10 bytes");
    if (hi < 2 ** 25) return BigInt(hi * 2 ** 28 + lo);
    return BigInt.asUintN(64, (BigInt(hi) << 28n) | BigInt(lo));
  }

  /** Repeated varints below 2^53 (enums): accepts both packed and unpacked encodings, as proto decoders must. */
  repeatedUvarint(wire: number, into: number[]): void {
    if (wire === WIRE_VARINT) {
      into.push(this.uvarint());
      return;
    }
    if (wire !== WIRE_BYTES) throw new ProtoError(`proto: bad wire type ${wire} for repeated varint`);
    const r = this.sub();
    while (!r.done()) into.push(r.uvarint());
  }

  /** Repeated uint64, packed or not. */
  repeatedUvarint64(wire: number, into: bigint[]): void {
    if (wire === WIRE_VARINT) {
      into.push(this.uvarint64());
      return;
    }
    if (wire !== WIRE_BYTES) throw new ProtoError(`proto: bad wire type ${wire} for repeated varint`);
    const r = this.sub();
    while (!r.done()) into.push(r.uvarint64());
  }

  /** A length-delimited payload as a view into the input. */
  bytes(): Uint8Array {
    const start = this.bytesAt();
    return this.pos === start ? EMPTY : this.buf.subarray(start, this.pos);
  }

  /** Steps over a length-delimited payload without a view of it: returns where it starts (it ends at `pos`). */
  bytesAt(): number {
    const len = this.uvarint();
    const start = this.pos;
    if (len > this.end - start) throw new ProtoError("proto: length-delimited field runs past the end");
    this.pos = start + len;
    return start;
  }

  /** A nested message: a reader over its bytes, advancing this one past them. */
  sub(): ProtoReader {
    const len = this.uvarint();
    const start = this.pos;
    if (len > this.end - start) throw new ProtoError("proto: nested message runs past the end");
    this.pos = start + len;
    return new ProtoReader(this.buf, start, start + len);
  }

  /** Skips a field this decoder does not know, so newer writers stay readable. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        // stepped over without its value (uvarint64 would make a BigInt of it)
        for (let n = 1; this.byte() >= 0x80; n++) {
          if (n === 10) throw new ProtoError("proto: varint longer than 10 bytes");
        }
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_BYTES:
        this.advance(this.uvarint());
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new ProtoError(`proto: unsupported wire type ${wire}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new ProtoError("proto: field runs past the end");
    this.pos += n;
  }
}
