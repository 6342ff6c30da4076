// Reads framed WAL records out of one segment's bytes at a time, verifying the rolling
// CRC. It tells a torn tail (the last write of a crash, which must be cut off) apart from
// corruption (which must stop the server): only the last segment may be torn, and only by
// running past the end of the file or by a record with a whole zeroed sector in it — what
// a write that never reached the disk leaves behind in a preallocated file.

import { crc32cUpdate } from "./crc32c.ts";
import { ERR_CRC_MISMATCH, ERR_MAX_ENTRY_SIZE, WalError } from "./errors.ts";
import { ProtoError } from "./proto_wire.ts";
import {
  decodeRecord,
  FRAME_BYTES,
  isZeroFrame,
  MAX_RECORD_BYTES,
  readFrame,
  type RecordFields,
  RecordType,
} from "./walpb.ts";

const SECTOR_BYTES = 512;

/** What next() found: a record (in `rec`), the end of the segment, or a torn tail. */
export const RECORD = Symbol("record");
export const END = Symbol("end of segment");
export const TORN = Symbol("torn tail");

/** A record without data shares this: a typed array of its own costs an ArrayBuffer (Deno keeps none on V8's heap). */
const NO_DATA = new Uint8Array(0);

export class RecordDecoder {
  private buf: Uint8Array = new Uint8Array(0);
  private name = "";
  private isLast = false;
  /** Offset just past the last valid record of the current segment. */
  lastValidOff = 0;
  /** Why the tail was torn, for the repair log. */
  tornReason = "";

  /**
   * The record next() found, where its data lies in `segment` (one object for every record: a restart reads ~200k, and
   * an object and a view each was most of what it kept until they were replayed).
   */
  readonly rec: RecordFields = { type: 0, crc: 0, dataStart: 0, dataEnd: 0 };

  /** `crc` is the rolling CRC so far: 0 before the first segment read. */
  constructor(public crc = 0) {}

  /** The segment being read. */
  get segment(): Uint8Array {
    return this.buf;
  }

  /** The found record's data, as a view. */
  data(): Uint8Array {
    const { dataStart, dataEnd } = this.rec;
    return dataEnd > dataStart ? this.buf.subarray(dataStart, dataEnd) : NO_DATA;
  }

  /** Starts on the next segment; the rolling CRC carries over. */
  load(name: string, buf: Uint8Array, isLast: boolean): void {
    this.buf = buf;
    this.name = name;
    this.isLast = isLast;
    this.lastValidOff = 0;
  }

  next(): typeof RECORD | typeof END | typeof TORN {
    const buf = this.buf;
    const off = this.lastValidOff;
    const left = buf.length - off;
    if (left === 0) return END;
    if (left < FRAME_BYTES) return isZero(buf, off, buf.length) ? END : this.torn(off, "partial frame");
    // A zero frame is where the writer stopped, if all that follows is preallocated
    // space; data after it means the frame's sector was lost from a later write.
    if (isZeroFrame(buf, off)) {
      return isZero(buf, off, buf.length) ? END : this.torn(off, "data after a zeroed frame");
    }
    const frame = readFrame(buf, off);
    if (frame < 0) throw this.corrupt(off, "corrupt record frame");
    const recBytes = Math.floor(frame / 8), pad = frame % 8;
    if (recBytes > MAX_RECORD_BYTES) throw this.corrupt(off, ERR_MAX_ENTRY_SIZE);
    const start = off + FRAME_BYTES;
    const end = start + recBytes;
    if (end + pad > buf.length) return this.torn(off, "record runs past the end of the file");
    const rec = this.rec;
    try {
      decodeRecord(buf, start, end, rec);
    } catch (e) {
      if (!(e instanceof ProtoError)) throw e;
      if (this.isTornRecord(start, end + pad)) return this.torn(off, "zeroed sector in record");
      throw this.corrupt(off, `undecodable record (${e.message})`);
    }
    if (rec.type === RecordType.Crc) {
      // The chain link: it must continue the CRC we have (unless we start mid-chain).
      if (this.crc !== 0 && rec.crc !== this.crc) throw this.corrupt(off, ERR_CRC_MISMATCH);
      this.crc = rec.crc;
    } else {
      const crc = crc32cUpdate(this.crc, buf, rec.dataStart, rec.dataEnd);
      if (crc !== rec.crc) {
        if (this.isTornRecord(start, end + pad)) return this.torn(off, "zeroed sector in record");
        throw this.corrupt(off, ERR_CRC_MISMATCH);
      }
      this.crc = crc;
    }
    this.lastValidOff = end + pad;
    return RECORD;
  }

  private torn(off: number, reason: string): typeof TORN {
    if (!this.isLast) throw this.corrupt(off, `${reason} in a segment that is not the last`);
    this.tornReason = reason;
    return TORN;
  }

  private corrupt(off: number, what: string): WalError {
    return new WalError(`${what} (segment ${this.name}, offset ${off})`);
  }

  // Split on sector boundaries of the file: a sector the disk never wrote reads as zeros.
  private isTornRecord(start: number, end: number): boolean {
    if (!this.isLast) return false;
    let off = start;
    while (off < end) {
      const chunkEnd = Math.min(end, (Math.floor(off / SECTOR_BYTES) + 1) * SECTOR_BYTES);
      if (isZero(this.buf, off, chunkEnd)) return true;
      off = chunkEnd;
    }
    return false;
  }
}

/** Below this many bytes (a sector's bytes in a record, say) a word view costs more than it saves. */
const WORDS_FROM = 256;

// Scans 4 bytes at a time where aligned: the tail check covers a whole preallocated segment.
export function isZero(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && (buf.byteOffset + i) % 4 !== 0) if (buf[i++] !== 0) return false;
  const words = (end - i) >>> 2;
  if (words > 0 && end - i >= WORDS_FROM) {
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k = 0; k < words; k++) if (w[k] !== 0) return false;
    i += words * 4;
  }
  while (i < end) if (buf[i++] !== 0) return false;
  return true;
}
