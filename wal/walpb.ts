// The WAL's own on-disk structures (etcd's walpb): the record envelope, its 8-byte
// length frame, and the snapshot marker.
//
// A record on disk is: u64le frame | Record{type=1, crc=2, data=3} | 0-7 zero pad bytes.
// The frame holds the record length in its low 56 bits; when padding is present the top
// byte is 0x80|pad. Padding keeps every frame 8-byte aligned so a frame is never torn
// across sectors.

import { ProtoReader, ProtoWriter } from "./proto_wire.ts";

export enum RecordType {
  Metadata = 1,
  Entry = 2,
  State = 3,
  Crc = 4,
  Snapshot = 5,
}

export const FRAME_BYTES = 8;
// etcd refuses records above 10 MiB when reading; refusing them when writing too means
// an oversized entry fails its save instead of making the WAL unreadable after restart.
export const MAX_RECORD_BYTES = 10 * 1024 * 1024;

/** The snapshot marker etcd writes to the WAL: which snapshot the log continues from. */
export interface WalSnapshot {
  index: number;
  term: number;
}

export function padBytes(recBytes: number): number {
  return (8 - (recBytes % 8)) % 8;
}

/** Writes the 8-byte little-endian frame for a record of `recBytes` bytes at `off`. */
export function writeFrame(buf: Uint8Array, off: number, recBytes: number): void {
  if (!(recBytes > 0 && recBytes <= MAX_RECORD_BYTES)) throw new Error(`walpb: bad record size ${recBytes}`);
  const pad = padBytes(recBytes);
  buf[off] = recBytes & 0xff;
  buf[off + 1] = (recBytes >>> 8) & 0xff;
  buf[off + 2] = (recBytes >>> 16) & 0xff;
  buf[off + 3] = (recBytes >>> 24) & 0xff;
  buf[off + 4] = 0;
  buf[off + 5] = 0;
  buf[off + 6] = 0;
  buf[off + 7] = pad === 0 ? 0 : 0x80 | pad;
}

/**
 * Parses a frame: the record's length and padding as `recBytes * 8 + padBytes` (one number, no array per record), or
 * -1 when the frame cannot have been written by an encoder (a corrupt frame rather than a record).
 */
/** Whether the frame at off is all zeros: where the writer stopped (a call per record: no loop, no view). */
export function isZeroFrame(buf: Uint8Array, off: number): boolean {
  return (buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 4] | buf[off + 5] | buf[off + 6] |
    buf[off + 7]) === 0;
}

export function readFrame(buf: Uint8Array, off: number): number {
  const lo = (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)) >>> 0;
  const top = buf[off + 7];
  if (buf[off + 4] !== 0 || buf[off + 5] !== 0 || buf[off + 6] !== 0) return -1;
  const pad = top === 0 ? 0 : top & 0x7;
  if (top !== 0 && (top & 0xf8) !== 0x80) return -1;
  if (pad !== padBytes(lo)) return -1;
  return lo * 8 + pad;
}

export function encodeWalSnapshot(s: WalSnapshot): Uint8Array {
  const w = new ProtoWriter(24);
  if (s.index !== 0) w.varintField(1, s.index);
  if (s.term !== 0) w.varintField(2, s.term);
  return w.view();
}

export function decodeWalSnapshot(b: Uint8Array): WalSnapshot {
  const r = new ProtoReader(b);
  const s: WalSnapshot = { index: 0, term: 0 };
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === 0x08) s.index = r.uvarint();
    else if (tag === 0x10) s.term = r.uvarint();
    else r.skip(tag & 7);
  }
  return s;
}

/** A record's envelope: its data is buf[dataStart, dataEnd) of the segment it was read from (empty without data). */
export interface RecordFields {
  type: number;
  crc: number;
  dataStart: number;
  dataEnd: number;
}

/** Parses the Record envelope (type=1 int64, crc=2 uint32, data=3 bytes) at buf[start, end) into `rec`. */
export function decodeRecord(buf: Uint8Array, start: number, end: number, rec: RecordFields): void {
  const r = new ProtoReader(buf, start, end);
  rec.type = rec.crc = 0;
  rec.dataStart = rec.dataEnd = start;
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === 0x08) rec.type = r.uvarint();
    else if (tag === 0x10) rec.crc = r.uvarint();
    else if (tag === 0x1a) {
      rec.dataStart = r.bytesAt();
      rec.dataEnd = r.pos;
    } else r.skip(tag & 7);
  }
}
