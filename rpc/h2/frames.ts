// HTTP/2 frame constants (RFC 9113 §6, §7, §11) and the per-connection output buffer frames are serialised into,
// so that everything a connection sends during one event-loop turn leaves in a single socket write.

import { Buffer } from "node:buffer";

export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
export const FRAME_HEADER = 9;

export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const ENHANCE_YOUR_CALM = 0xb;

export const DEFAULT_WINDOW = 65535;
export const DEFAULT_MAX_FRAME_SIZE = 16384;
export const MAX_WINDOW = 0x7fffffff;

// A growable byte buffer of serialised frames. take() hands a copy of the filled part over (to a socket write,
// which may hold on to it) and keeps the buffer: a fresh 16 KiB buffer per flush was malloc churn outside the V8
// heap, while a small copy comes from node's Buffer pool.
export class FrameWriter {
  #buf: Buffer;
  #spare: Buffer | undefined;
  #pos = 0;

  constructor(readonly initialSize = 16384) {
    this.#buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.#pos;
  }

  /**
   * The frames written so far, for one socket write; release() once the socket is done with them. The buffer is
   * handed over, not copied: the writer goes on in its spare one (the buffer of the last released write), so a busy
   * connection writes from two buffers in turn instead of allocating a copy per flush.
   */
  take(): { bytes: Uint8Array; release: () => void } {
    const lent = this.#buf;
    const bytes = lent.subarray(0, this.#pos);
    this.#buf = this.#spare ?? Buffer.allocUnsafeSlow(this.initialSize);
    this.#spare = undefined;
    this.#pos = 0;
    // Unzeroed: every byte handed out is written first. A buffer grown past 1 MiB is not kept.
    const release = () => {
      if (lent.length <= 1 << 20) this.#spare ??= lent;
    };
    return { bytes, release };
  }

  #reserve(n: number) {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  // A frame whose payload is data[start, end).
  frame(type: number, flags: number, stream: number, data?: Uint8Array, start = 0, end = data?.length ?? 0) {
    const len = end - start;
    this.#reserve(FRAME_HEADER + len);
    const b = this.#buf;
    let p = this.#pos;
    b[p] = len >>> 16;
    b[p + 1] = len >>> 8;
    b[p + 2] = len;
    b[p + 3] = type;
    b[p + 4] = flags;
    b[p + 5] = stream >>> 24;
    b[p + 6] = stream >>> 16;
    b[p + 7] = stream >>> 8;
    b[p + 8] = stream;
    p += FRAME_HEADER;
    if (data !== undefined && len > 0) {
      b.set(start === 0 && end === data!.length ? data! : data!.subarray(start, end), p);
    }
    this.#pos = p + len;
  }

  // A frame whose payload is 32-bit words (RST_STREAM, WINDOW_UPDATE, GOAWAY) or 16/32-bit pairs (SETTINGS).
  words(type: number, flags: number, stream: number, ...words: number[]) {
    this.#reserve(FRAME_HEADER + words.length * 4);
    const at = this.#pos + FRAME_HEADER;
    this.frame(type, flags, stream, undefined, 0, words.length * 4);
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset);
    words.forEach((w, i) => view.setUint32(at + i * 4, w));
  }

  settings(pairs: readonly (readonly [number, number])[]) {
    const at = this.#pos + FRAME_HEADER;
    this.#reserve(FRAME_HEADER + pairs.length * 6);
    this.frame(SETTINGS, 0, 0, undefined, 0, pairs.length * 6);
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset);
    pairs.forEach(([id, value], i) => {
      view.setUint16(at + i * 6, id);
      view.setUint32(at + i * 6 + 2, value);
    });
  }
}
