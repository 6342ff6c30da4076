// Binary encoding of ConfChange / ConfChangeV2 for conf-change entry data.
// Wire-compatible with etcd's raftpb (gogoproto) messages, so logs stay readable
// by etcd tooling.

import type { ConfChange, ConfChangeSingle, ConfChangeV2 } from "./types.ts";

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

class Writer {
  private buf = new Uint8Array(32);
  private n = 0;

  private ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }

  varint(v: number): void {
    this.ensure(10);
    // Division, not shifts: ids can exceed 32 bits.
    while (v >= 0x80) {
      this.buf[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.n++] = v;
  }

  /** A node ID: uint64, all of its bits. */
  varint64(v: bigint): void {
    this.ensure(10);
    v = BigInt.asUintN(64, v);
    while (v >= 0x80n) {
      this.buf[this.n++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.n++] = Number(v);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Uint8Array;
  private readonly end: number;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.end = buf.length;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error("confchange: truncated varint");
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  }

  varint64(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw new Error("confchange: truncated varint");
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, v);
    }
    throw new Error("confchange: varint longer than 10 bytes");
  }

  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error("confchange: truncated bytes");
    const b = this.buf.slice(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_BYTES) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`confchange: unsupported wire type ${wire}`);
  }
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new Writer();
  w.tag(1, WIRE_VARINT);
  w.varint64(cc.id);
  w.tag(2, WIRE_VARINT);
  w.varint(cc.type);
  w.tag(3, WIRE_VARINT);
  w.varint64(cc.nodeId);
  if (cc.context !== undefined) {
    w.tag(4, WIRE_BYTES);
    w.bytes(cc.context);
  }
  return w.finish();
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const r = new Reader(data);
  const cc: ConfChange = { id: 0n, type: 0, nodeId: 0n };
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 1 && wire === WIRE_VARINT) cc.id = r.varint64();
    else if (field === 2 && wire === WIRE_VARINT) cc.type = r.varint();
    else if (field === 3 && wire === WIRE_VARINT) cc.nodeId = r.varint64();
    else if (field === 4 && wire === WIRE_BYTES) cc.context = r.bytes();
    else r.skip(wire);
  }
  return cc;
}

function encodeSingle(s: ConfChangeSingle): Uint8Array {
  const w = new Writer();
  w.tag(1, WIRE_VARINT);
  w.varint(s.type);
  w.tag(2, WIRE_VARINT);
  w.varint64(s.nodeId);
  return w.finish();
}

function decodeSingle(data: Uint8Array): ConfChangeSingle {
  const r = new Reader(data);
  const s: ConfChangeSingle = { type: 0, nodeId: 0n };
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 1 && wire === WIRE_VARINT) s.type = r.varint();
    else if (field === 2 && wire === WIRE_VARINT) s.nodeId = r.varint64();
    else r.skip(wire);
  }
  return s;
}

export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  const w = new Writer();
  w.tag(1, WIRE_VARINT);
  w.varint(cc.transition);
  for (const s of cc.changes) {
    w.tag(2, WIRE_BYTES);
    w.bytes(encodeSingle(s));
  }
  if (cc.context !== undefined) {
    w.tag(3, WIRE_BYTES);
    w.bytes(cc.context);
  }
  return w.finish();
}

export function decodeConfChangeV2(data: Uint8Array): ConfChangeV2 {
  const r = new Reader(data);
  const cc: ConfChangeV2 = { transition: 0, changes: [] };
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 1 && wire === WIRE_VARINT) cc.transition = r.varint();
    else if (field === 2 && wire === WIRE_BYTES) cc.changes.push(decodeSingle(r.bytes()));
    else if (field === 3 && wire === WIRE_BYTES) cc.context = r.bytes();
    else r.skip(wire);
  }
  return cc;
}
