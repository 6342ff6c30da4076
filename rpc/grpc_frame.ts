// gRPC length-prefixed message framing: 1 flag byte (bit 0 = compressed), 4-byte big-endian length, message.

import { Buffer } from "node:buffer";
import { ConnectError } from "@connectrpc/connect";
import { GrpcCode } from "./status_codes.ts";

const HEADER = 5;

// Header and message in one buffer so a response leaves as a single DATA frame.
export function encodeFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, HEADER);
  return out;
}

// Splits a byte stream into messages. Holds at most one partial message, and refuses one larger than maxBytes as
// soon as its header arrives, so a client cannot make the server buffer more than maxBytes per stream.
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1; // length of the message being read, -1 while its header is incomplete

  constructor(readonly maxBytes: number) {}

  // True when no partial frame is pending (a clean end of stream).
  get idle(): boolean {
    return this.#buffered === 0;
  }

  push(chunk: Buffer, out: Uint8Array[]): void {
    if (this.#buffered === 0 && chunk.length >= HEADER) {
      // Fast path: frames that start at a chunk boundary are sliced without copying.
      let off = 0;
      while (chunk.length - off >= HEADER) {
        const len = this.#check(chunk, off);
        if (chunk.length - off - HEADER < len) break;
        out.push(chunk.subarray(off + HEADER, off + HEADER + len));
        off += HEADER + len;
      }
      if (off === chunk.length) return;
      chunk = chunk.subarray(off);
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < HEADER) return;
        this.#need = this.#check(this.#take(HEADER), 0);
      }
      if (this.#buffered < this.#need) return;
      out.push(this.#take(this.#need));
      this.#need = -1;
    }
  }

  #check(buf: Buffer, off: number): number {
    const len = buf.readUInt32BE(off + 1);
    if (buf[off] & 1) {
      throw new ConnectError("grpc: compressed flag set with identity or empty encoding", GrpcCode.Internal);
    }
    if (len > this.maxBytes) {
      throw new ConnectError(
        `grpc: received message larger than max (${len} vs. ${this.maxBytes})`,
        GrpcCode.ResourceExhausted,
      );
    }
    return len;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const c = this.#chunks[0];
        const k = Math.min(c.length, n - got);
        c.copy(out, got, 0, k);
        got += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    return out;
  }
}
