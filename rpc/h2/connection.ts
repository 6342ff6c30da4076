// The server side of one HTTP/2 connection (RFC 9113) over a node:net socket: frame parsing, SETTINGS, HPACK,
// flow control in both directions, stream lifecycle, PING, GOAWAY. Connection errors answer GOAWAY and close;
// stream errors answer RST_STREAM. All frames produced during one event-loop turn go out in one socket write.

import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import * as F from "./frames.ts";
import { encodeHeaders, HpackDecoder, HpackError } from "./hpack.ts";
import { H2Stream, type HeaderBlock, type StreamSink, WRITE_HIGH_WATER } from "./stream.ts";

export interface H2ConnectionOptions {
  // A new request stream (headers complete); the callee attaches a handler.
  readonly onStream: (stream: H2Stream) => void;
  readonly maxConcurrentStreams?: number;
  // Per-stream receive window we advertise; bounds what one stream can make us buffer.
  readonly initialWindowSize?: number;
  // Connection receive window; bounds what all streams together can make us buffer.
  readonly connectionWindowSize?: number;
  readonly maxHeaderListSize?: number;
  // Called once when the connection is gone.
  readonly onClose?: () => void;
}

class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

// Serialised bytes per turn beyond which DATA waits for the next flush; bytes the socket holds unsent beyond
// OUTPUT_LIMIT (control frames a peer provokes without reading) make us drop the connection.
const OUTPUT_HIGH_WATER = 256 * 1024;
const OUTPUT_LIMIT = 16 * 1024 * 1024;
const EMPTY = new Uint8Array(0);
const STATUS_431 = encodeHeaders({ ":status": 431 });

export class H2Connection implements StreamSink {
  readonly #socket: Socket;
  readonly #opts: H2ConnectionOptions;
  readonly #out = new F.FrameWriter();
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, H2Stream>();
  // Streams with response data waiting for flow-control window or socket room, in arrival order.
  readonly #blocked = new Set<H2Stream>();
  readonly #maxStreams: number;
  readonly #streamWindow: number;
  readonly #connWindow: number;
  #pending: Uint8Array | undefined; // an incomplete frame (or preface) from the last read
  #prefaceSeen = false;
  #lastStreamId = 0;
  // Header block being assembled from HEADERS + CONTINUATION.
  #headerStream = 0;
  #headerFlags = 0;
  #headerChunks: Uint8Array[] = [];
  #headerBytes = 0;
  // Peer settings.
  #peerInitialWindow = F.DEFAULT_WINDOW;
  #peerMaxFrame = F.DEFAULT_MAX_FRAME_SIZE;
  #sendWindow = F.DEFAULT_WINDOW; // connection-level, what we may send
  #recvWindow = F.DEFAULT_WINDOW; // connection-level, what the peer may send
  #recvUnacked = 0;
  #flushScheduled = false;
  #socketBlocked = false;
  #goawaySent = false;
  #peerGoaway = false;
  #dead = false;

  constructor(socket: Socket, opts: H2ConnectionOptions, firstChunk?: Uint8Array) {
    this.#socket = socket;
    this.#opts = opts;
    this.#maxStreams = opts.maxConcurrentStreams ?? 1000;
    this.#streamWindow = opts.initialWindowSize ?? 1 << 20;
    this.#connWindow = opts.connectionWindowSize ?? 16 << 20;
    const maxList = opts.maxHeaderListSize ?? 64 * 1024;
    this.#decoder = new HpackDecoder(4096, maxList);
    this.#out.settings([
      [F.SETTINGS_MAX_CONCURRENT_STREAMS, this.#maxStreams],
      [F.SETTINGS_INITIAL_WINDOW_SIZE, this.#streamWindow],
      [F.SETTINGS_MAX_HEADER_LIST_SIZE, maxList],
      [F.SETTINGS_ENABLE_PUSH, 0],
    ]);
    if (this.#connWindow > F.DEFAULT_WINDOW) {
      this.#out.words(F.WINDOW_UPDATE, 0, 0, this.#connWindow - F.DEFAULT_WINDOW);
      this.#recvWindow = this.#connWindow;
    }
    this.#scheduleFlush();
    socket.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    socket.on("drain", () => this.#onDrain());
    socket.once("close", () => this.#onSocketClose());
    if (firstChunk !== undefined && firstChunk.length > 0) this.#onData(firstChunk);
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  // Graceful shutdown: GOAWAY with the last stream we accepted; in-flight streams finish, then the socket closes.
  close(): void {
    if (this.#dead) return;
    this.#goaway(F.NO_ERROR, "");
    this.#maybeFinish();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  // --- reading ---

  #onData(chunk: Uint8Array) {
    if (this.#dead) return;
    if (this.#pending !== undefined) {
      // A Buffer like the socket's own chunks, so body views handed to handlers are Buffers either way.
      chunk = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    try {
      let off = 0;
      if (!this.#prefaceSeen) {
        const n = Math.min(chunk.length, F.PREFACE.length);
        for (let i = 0; i < n; i++) {
          if (chunk[i] !== F.PREFACE[i]) throw new ConnectionError(F.PROTOCOL_ERROR, "bad connection preface");
        }
        if (n < F.PREFACE.length) {
          this.#pending = chunk;
          return;
        }
        this.#prefaceSeen = true;
        off = n;
      }
      const len = chunk.length;
      while (len - off >= F.FRAME_HEADER) {
        const size = (chunk[off] << 16) | (chunk[off + 1] << 8) | chunk[off + 2];
        if (size > F.DEFAULT_MAX_FRAME_SIZE) throw new ConnectionError(F.FRAME_SIZE_ERROR, "frame too large");
        if (len - off - F.FRAME_HEADER < size) break;
        const type = chunk[off + 3];
        const flags = chunk[off + 4];
        const id = ((chunk[off + 5] & 0x7f) << 24 | (chunk[off + 6] << 16) | (chunk[off + 7] << 8) | chunk[off + 8]) >>>
          0;
        const start = off + F.FRAME_HEADER;
        off = start + size;
        this.#frame(type, flags, id, chunk.subarray(start, off));
        if (this.#dead) return;
      }
      if (off < len) this.#pending = chunk.subarray(off);
    } catch (e) {
      if (e instanceof ConnectionError) return this.#fail(e.code, e.message);
      if (e instanceof HpackError) return this.#fail(F.COMPRESSION_ERROR, e.message);
      this.#fail(F.INTERNAL_ERROR, String(e));
    }
  }

  #frame(type: number, flags: number, id: number, p: Uint8Array) {
    if (this.#headerStream !== 0 && (type !== F.CONTINUATION || id !== this.#headerStream)) {
      throw new ConnectionError(F.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (type) {
      case F.DATA:
        return this.#onDataFrame(flags, id, p);
      case F.HEADERS:
        return this.#onHeaders(flags, id, p);
      case F.CONTINUATION:
        if (this.#headerStream === 0) throw new ConnectionError(F.PROTOCOL_ERROR, "unexpected CONTINUATION");
        return this.#addHeaderFragment(flags, p);
      case F.PRIORITY:
        if (id === 0) throw new ConnectionError(F.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (p.length !== 5) this.#resetId(id, F.FRAME_SIZE_ERROR);
        return;
      case F.RST_STREAM:
        if (id === 0) throw new ConnectionError(F.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        if (p.length !== 4) throw new ConnectionError(F.FRAME_SIZE_ERROR, "bad RST_STREAM length");
        if (id > this.#lastStreamId) throw new ConnectionError(F.PROTOCOL_ERROR, "RST_STREAM on idle stream");
        return this.#closeStream(this.#streams.get(id), true, u32(p, 0));
      case F.SETTINGS:
        return this.#onSettings(flags, id, p);
      case F.PUSH_PROMISE:
        throw new ConnectionError(F.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case F.PING:
        if (id !== 0) throw new ConnectionError(F.PROTOCOL_ERROR, "PING on a stream");
        if (p.length !== 8) throw new ConnectionError(F.FRAME_SIZE_ERROR, "bad PING length");
        if ((flags & F.FLAG_ACK) === 0) {
          this.#out.frame(F.PING, F.FLAG_ACK, 0, p);
          this.#scheduleFlush();
        }
        return;
      case F.GOAWAY:
        if (id !== 0) throw new ConnectionError(F.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (p.length < 8) throw new ConnectionError(F.FRAME_SIZE_ERROR, "bad GOAWAY length");
        this.#peerGoaway = true;
        return this.#maybeFinish();
      case F.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, p);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  #onDataFrame(flags: number, id: number, p: Uint8Array) {
    if (id === 0) throw new ConnectionError(F.PROTOCOL_ERROR, "DATA on stream 0");
    const size = p.length;
    this.#recvWindow -= size;
    if (this.#recvWindow < 0) throw new ConnectionError(F.FLOW_CONTROL_ERROR, "connection window exceeded");
    let data = p;
    if (flags & F.FLAG_PADDED) {
      if (size === 0 || p[0] >= size) throw new ConnectionError(F.PROTOCOL_ERROR, "bad padding");
      data = p.subarray(1, size - p[0]);
    }
    const s = this.#streams.get(id);
    if (s === undefined || s.remoteEnded) {
      if (id > this.#lastStreamId) throw new ConnectionError(F.PROTOCOL_ERROR, "DATA on idle stream");
      this.#ackConnection(size);
      if (s !== undefined) this.reset(s, F.STREAM_CLOSED);
      else this.#resetId(id, F.STREAM_CLOSED);
      return;
    }
    s.recvWindow -= size;
    if (s.recvWindow < 0) {
      this.#ackConnection(size);
      return this.reset(s, F.FLOW_CONTROL_ERROR);
    }
    // Padding is consumed at once; the data when the handler takes it.
    if (size > data.length) this.consumed(s, size - data.length);
    s.receive(data, (flags & F.FLAG_END_STREAM) !== 0);
    this.#maybeClosed(s);
  }

  #onHeaders(flags: number, id: number, p: Uint8Array) {
    if (id === 0 || (id & 1) === 0) throw new ConnectionError(F.PROTOCOL_ERROR, "HEADERS on a bad stream id");
    let start = 0, end = p.length;
    if (flags & F.FLAG_PADDED) {
      if (end === 0 || p[0] >= end) throw new ConnectionError(F.PROTOCOL_ERROR, "bad padding");
      end -= p[0];
      start = 1;
    }
    if (flags & F.FLAG_PRIORITY) start += 5;
    if (start > end) throw new ConnectionError(F.PROTOCOL_ERROR, "HEADERS too short");
    this.#headerStream = id;
    this.#headerFlags = flags;
    this.#headerChunks.length = 0;
    this.#headerBytes = 0;
    this.#addHeaderFragment(flags, p.subarray(start, end));
  }

  #addHeaderFragment(flags: number, fragment: Uint8Array) {
    this.#headerBytes += fragment.length;
    // Twice the list limit: HPACK can only shrink text, but a compressed block larger than this is abuse.
    if (this.#headerBytes > 2 * this.#decoder.maxListSize) {
      throw new ConnectionError(F.ENHANCE_YOUR_CALM, "header block too large");
    }
    this.#headerChunks.push(fragment);
    if ((flags & F.FLAG_END_HEADERS) === 0) return;
    const chunks = this.#headerChunks;
    const block = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.#headerBytes);
    const id = this.#headerStream;
    this.#headerStream = 0;
    this.#headerChunks = [];
    this.#headerBlock(id, this.#headerFlags, block);
  }

  #headerBlock(id: number, flags: number, block: Uint8Array) {
    const headers = this.#decoder.decode(block); // always decoded: the HPACK table must stay in step
    const endStream = (flags & F.FLAG_END_STREAM) !== 0;
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers: must end the stream.
      if (!endStream || existing.remoteEnded) return this.reset(existing, F.PROTOCOL_ERROR);
      existing.receive(EMPTY, true);
      return this.#maybeClosed(existing);
    }
    if (id <= this.#lastStreamId) throw new ConnectionError(F.STREAM_CLOSED, "HEADERS on a closed stream");
    this.#lastStreamId = id;
    if (this.#goawaySent || this.#peerGoaway || this.#streams.size >= this.#maxStreams) {
      return this.#resetId(id, F.REFUSED_STREAM);
    }
    if (headers === undefined) {
      this.#out.frame(F.HEADERS, F.FLAG_END_HEADERS | F.FLAG_END_STREAM, id, STATUS_431);
      if (!endStream) this.#out.words(F.RST_STREAM, 0, id, F.NO_ERROR);
      return this.#scheduleFlush();
    }
    if (headers[":method"] === undefined || headers[":path"] === undefined) {
      return this.#resetId(id, F.PROTOCOL_ERROR);
    }
    const s = new H2Stream(id, headers, this, this.#peerInitialWindow, this.#streamWindow);
    this.#streams.set(id, s);
    if (endStream) s.remoteEnded = true;
    this.#opts.onStream(s);
    if (endStream && !s.closed) s.receive(EMPTY, true);
    this.#maybeClosed(s);
  }

  #onSettings(flags: number, id: number, p: Uint8Array) {
    if (id !== 0) throw new ConnectionError(F.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & F.FLAG_ACK) {
      if (p.length !== 0) throw new ConnectionError(F.FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
      return;
    }
    if (p.length % 6 !== 0) throw new ConnectionError(F.FRAME_SIZE_ERROR, "bad SETTINGS length");
    for (let i = 0; i < p.length; i += 6) {
      const key = (p[i] << 8) | p[i + 1];
      const value = u32(p, i + 2);
      switch (key) {
        case F.SETTINGS_ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(F.PROTOCOL_ERROR, "bad ENABLE_PUSH");
          break;
        case F.SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > F.MAX_WINDOW) throw new ConnectionError(F.FLOW_CONTROL_ERROR, "bad INITIAL_WINDOW_SIZE");
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > F.MAX_WINDOW) throw new ConnectionError(F.FLOW_CONTROL_ERROR, "window overflow");
          }
          break;
        }
        case F.SETTINGS_MAX_FRAME_SIZE:
          if (value < F.DEFAULT_MAX_FRAME_SIZE || value > 0xffffff) {
            throw new ConnectionError(F.PROTOCOL_ERROR, "bad MAX_FRAME_SIZE");
          }
          this.#peerMaxFrame = value;
          break;
          // HEADER_TABLE_SIZE: our encoder never indexes, so any size the peer allows is fine; the rest is advisory.
      }
    }
    this.#out.frame(F.SETTINGS, F.FLAG_ACK, 0);
    this.#scheduleFlush();
    this.#pumpBlocked();
  }

  #onWindowUpdate(id: number, p: Uint8Array) {
    if (p.length !== 4) throw new ConnectionError(F.FRAME_SIZE_ERROR, "bad WINDOW_UPDATE length");
    const inc = u32(p, 0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(F.PROTOCOL_ERROR, "zero WINDOW_UPDATE");
      this.#sendWindow += inc;
      if (this.#sendWindow > F.MAX_WINDOW) throw new ConnectionError(F.FLOW_CONTROL_ERROR, "window overflow");
      return this.#pumpBlocked();
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) throw new ConnectionError(F.PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream");
      return;
    }
    if (inc === 0) return this.reset(s, F.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > F.MAX_WINDOW) return this.reset(s, F.FLOW_CONTROL_ERROR);
    this.sendData(s);
  }

  // --- StreamSink ---

  sendHeaders(s: H2Stream, block: HeaderBlock, endStream: boolean): void {
    const bytes = block instanceof Uint8Array ? block : encodeHeaders(block);
    this.#writeHeaders(s.id, bytes, endStream);
    if (endStream) this.#localEnd(s);
    this.#scheduleFlush();
  }

  // Sends as much queued data as windows and the socket allow; then trailers / END_STREAM once the queue is empty.
  sendData(s: H2Stream): void {
    if (s.closed || this.#dead) return;
    const out = this.#out;
    if (!s.headersSent) {
      // Data or end before respond(): a bare 200 keeps the frame order legal.
      s.headersSent = true;
      this.#writeHeaders(s.id, STATUS_200, false);
    }
    while (s.queued > 0) {
      const room = Math.min(s.sendWindow, this.#sendWindow, this.#peerMaxFrame);
      if (room <= 0 || this.#socketBlocked || out.length >= OUTPUT_HIGH_WATER) {
        this.#blocked.add(s);
        // a flush helps only if there is output; a stream out of window waits for WINDOW_UPDATE (which pumps the
        // blocked streams), not for a flush that would find it still blocked and schedule the next, every turn
        if (out.length > 0) this.#scheduleFlush();
        return this.#drained(s);
      }
      const chunk = s.queue[0];
      const start = s.queueOffset;
      const n = Math.min(room, chunk.length - start);
      const last = n === chunk.length - start && s.queue.length === 1;
      const endHere = last && s.ending && s.trailers === undefined;
      out.frame(F.DATA, endHere ? F.FLAG_END_STREAM : 0, s.id, chunk, start, start + n);
      s.sendWindow -= n;
      this.#sendWindow -= n;
      s.queued -= n;
      if (start + n === chunk.length) s.dropFirst();
      else s.queueOffset = start + n;
      if (endHere) {
        this.#blocked.delete(s);
        this.#localEnd(s);
        this.#scheduleFlush();
        return;
      }
    }
    this.#blocked.delete(s);
    if (s.ending && !s.localEnded) {
      if (s.trailers !== undefined) {
        const t = s.trailers;
        this.#writeHeaders(s.id, t instanceof Uint8Array ? t : encodeHeaders(t), true);
      } else out.frame(F.DATA, F.FLAG_END_STREAM, s.id);
      this.#localEnd(s);
    }
    this.#scheduleFlush();
    this.#drained(s);
  }

  #drained(s: H2Stream) {
    if (s.needDrain && s.queued < WRITE_HIGH_WATER && !s.closed) {
      s.needDrain = false;
      s.handler?.onDrain();
    }
  }

  reset(s: H2Stream, code: number): void {
    if (s.closed) return;
    this.#resetId(s.id, code);
    this.#closeStream(s, true, code);
  }

  // Returns window to the peer for bytes a handler took: per stream once half the window is used (the stream's
  // own window is not replenished after the peer ended it), per connection likewise.
  consumed(s: H2Stream, bytes: number): void {
    if (!s.remoteEnded && !s.closed) {
      s.unacked += bytes;
      if (s.unacked >= this.#streamWindow >>> 1) {
        this.#out.words(F.WINDOW_UPDATE, 0, s.id, s.unacked);
        s.recvWindow += s.unacked;
        s.unacked = 0;
        this.#scheduleFlush();
      }
    }
    this.#ackConnection(bytes);
  }

  // --- internals ---

  #ackConnection(bytes: number) {
    this.#recvUnacked += bytes;
    if (this.#recvUnacked >= this.#connWindow >>> 1) {
      this.#out.words(F.WINDOW_UPDATE, 0, 0, this.#recvUnacked);
      this.#recvWindow += this.#recvUnacked;
      this.#recvUnacked = 0;
      this.#scheduleFlush();
    }
  }

  #writeHeaders(id: number, block: Uint8Array, endStream: boolean) {
    const max = this.#peerMaxFrame;
    const es = endStream ? F.FLAG_END_STREAM : 0;
    if (block.length <= max) return this.#out.frame(F.HEADERS, es | F.FLAG_END_HEADERS, id, block);
    this.#out.frame(F.HEADERS, es, id, block, 0, max);
    for (let off = max; off < block.length; off += max) {
      const end = Math.min(block.length, off + max);
      this.#out.frame(F.CONTINUATION, end === block.length ? F.FLAG_END_HEADERS : 0, id, block, off, end);
    }
  }

  #localEnd(s: H2Stream) {
    s.localEnded = true;
    this.#maybeClosed(s);
  }

  #maybeClosed(s: H2Stream) {
    if (s.localEnded && s.remoteEnded) this.#closeStream(s, false, F.NO_ERROR);
  }

  #closeStream(s: H2Stream | undefined, aborted: boolean, code: number) {
    if (s === undefined || s.closed) return;
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    s.close(aborted, code);
    this.#maybeFinish();
  }

  #resetId(id: number, code: number) {
    this.#out.words(F.RST_STREAM, 0, id, code);
    this.#scheduleFlush();
  }

  #pumpBlocked() {
    for (const s of this.#blocked) {
      this.sendData(s);
      if (this.#socketBlocked || this.#out.length >= OUTPUT_HIGH_WATER || this.#sendWindow <= 0) break;
    }
  }

  #goaway(code: number, debug: string) {
    if (this.#goawaySent) return;
    this.#goawaySent = true;
    const text = new TextEncoder().encode(debug);
    const p = new Uint8Array(8 + text.length);
    new DataView(p.buffer).setUint32(0, this.#lastStreamId);
    new DataView(p.buffer).setUint32(4, code);
    p.set(text, 8);
    this.#out.frame(F.GOAWAY, 0, 0, p);
    this.#scheduleFlush();
  }

  // After a GOAWAY either way, the connection ends once its last stream does.
  #maybeFinish() {
    if ((this.#goawaySent || this.#peerGoaway) && this.#streams.size === 0 && !this.#dead) {
      this.#flush();
      this.#dead = true;
      this.#socket.end();
    }
  }

  // Connection error: GOAWAY with the code, then close; streams in flight are aborted.
  #fail(code: number, message: string) {
    if (this.#dead) return;
    this.#goaway(code, message);
    this.#flush();
    this.#dead = true;
    this.#abortAll();
    this.#socket.end();
  }

  #abortAll() {
    for (const s of [...this.#streams.values()]) this.#closeStream(s, true, F.CANCEL);
  }

  #onSocketClose() {
    this.#dead = true;
    this.#abortAll();
    this.#opts.onClose?.();
  }

  #onDrain() {
    this.#socketBlocked = false;
    this.#pumpBlocked();
  }

  #scheduleFlush() {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushCallback);
  }

  readonly #flushCallback = () => {
    this.#flushScheduled = false;
    this.#flush();
    // Data held back only because the output buffer was full can go now.
    if (this.#blocked.size > 0 && !this.#socketBlocked) this.#pumpBlocked();
  };

  #flush() {
    if (this.#out.length === 0 || !this.#socket.writable) return;
    const { bytes, release } = this.#out.take();
    if (!this.#socket.write(bytes, release)) {
      this.#socketBlocked = true;
      // A peer that does not read while provoking control frames (PING, SETTINGS) is dropped.
      if (this.#socket.writableLength > OUTPUT_LIMIT) this.#socket.destroy();
    }
  }
}

const STATUS_200 = encodeHeaders({ ":status": 200 });

function u32(p: Uint8Array, off: number): number {
  return ((p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3]) >>> 0;
}
