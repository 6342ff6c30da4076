// Turns WAL records into framed bytes, carrying the rolling CRC: each record's crc field
// is the CRC-32C of every record's data since the segment chain began, so a lost or
// reordered record breaks the chain, not just a flipped bit within one record.

import type { Entry, HardState } from "../raft/types.ts";
import { crc32cUpdate } from "./crc32c.ts";
import { ERR_MAX_ENTRY_SIZE, WalError } from "./errors.ts";
import { bytesFieldSize, ProtoWriter, uvarintSize } from "./proto_wire.ts";
import { encodeHardState, writeEntry } from "./raft_codec.ts";
import {
  encodeWalSnapshot,
  FRAME_BYTES,
  MAX_RECORD_BYTES,
  padBytes,
  RecordType,
  type WalSnapshot,
  writeFrame,
} from "./walpb.ts";

const EMPTY: Uint8Array = new Uint8Array(0);
// A batch buffer that grew for one huge batch is dropped afterwards rather than pinned.
const KEEP_BUFFER_BYTES = 4 * 1024 * 1024;

export class RecordEncoder {
  private out = new ProtoWriter(1024 * 1024);
  private readonly scratch = new ProtoWriter(4096);

  constructor(public crc: number) {}

  /** Bytes appended since the last take(). */
  get pending(): number {
    return this.out.pos;
  }

  private append(type: RecordType, data: Uint8Array): void {
    const crc = crc32cUpdate(this.crc, data);
    const recBytes = 1 + uvarintSize(type) + 1 + uvarintSize(crc) +
      (data.length === 0 ? 0 : bytesFieldSize(data.length));
    if (recBytes > MAX_RECORD_BYTES) throw new WalError(`${ERR_MAX_ENTRY_SIZE}: record of ${recBytes} bytes`);
    const pad = padBytes(recBytes);
    const out = this.out;
    out.reserve(FRAME_BYTES + recBytes + pad);
    writeFrame(out.buf, out.pos, recBytes);
    out.pos += FRAME_BYTES;
    const start = out.pos;
    out.varintField(1, type);
    out.varintField(2, crc);
    if (data.length !== 0) out.bytesField(3, data);
    if (out.pos - start !== recBytes) {
      throw new Error(`record_encoder: sized ${recBytes} bytes but wrote ${out.pos - start}`);
    }
    out.buf.fill(0, out.pos, out.pos + pad);
    out.pos += pad;
    this.crc = crc;
  }

  entry(e: Entry): void {
    this.scratch.pos = 0;
    writeEntry(this.scratch, e);
    this.append(RecordType.Entry, this.scratch.view());
  }

  state(s: HardState): void {
    this.append(RecordType.State, encodeHardState(s));
  }

  metadata(m: Uint8Array): void {
    this.append(RecordType.Metadata, m);
  }

  snapshot(s: WalSnapshot): void {
    this.append(RecordType.Snapshot, encodeWalSnapshot(s));
  }

  /** The chain link at a segment head: carries the CRC the previous segment ended with. */
  crcRecord(): void {
    this.append(RecordType.Crc, EMPTY);
  }

  /** Hands over the bytes appended so far; the view is valid until the next append. */
  take(): Uint8Array {
    const bytes = this.out.view();
    this.out.pos = 0;
    if (this.out.buf.length > KEEP_BUFFER_BYTES) {
      const old = this.out;
      this.out = new ProtoWriter(1024 * 1024);
      return old.buf.subarray(0, bytes.length);
    }
    return bytes;
  }
}
