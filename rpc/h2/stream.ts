// One server-side HTTP/2 stream (a request and its response) as handlers see it. Callbacks go to a single
// StreamHandler object (typically the call's own state object), so serving a request needs no closures.

import type { HeaderMap, OutgoingHeaders } from "./hpack.ts";

export interface StreamHandler {
  // A chunk of request body: a view (a node Buffer) into what the socket read, the handler may keep it.
  onData(chunk: Uint8Array): void;
  // The client half-closed (END_STREAM); no more onData.
  onEnd(): void;
  // write() returned false earlier and the queued response data has drained below the mark.
  onDrain(): void;
  // The stream is gone: `aborted` when it was reset (by either side) or the connection died before the response
  // was complete. Called exactly once, last.
  onClose(aborted: boolean): void;
}

// Pre-encoded (encodeHeaders) or plain header lists.
export type HeaderBlock = Uint8Array | OutgoingHeaders;

// What the connection does for its streams; implemented by H2Connection.
export interface StreamSink {
  sendHeaders(stream: H2Stream, block: HeaderBlock, endStream: boolean): void;
  sendData(stream: H2Stream): void;
  reset(stream: H2Stream, code: number): void;
  consumed(stream: H2Stream, bytes: number): void;
}

// Response bytes queued per stream beyond which write() asks the caller to wait for onDrain.
export const WRITE_HIGH_WATER = 64 * 1024;
// The ring that holds a stream's copies of queued chunks (see keepCopy): what write() lets a stream queue, and a
// message more.
const RING_BYTES = 2 * WRITE_HIGH_WATER;
// Rings given back by streams whose copies all went out, for the next stream that needs one: a stream holds a ring
// only while its client is behind (a watch stream that lasts would otherwise keep one for good), and a fan-out's
// streams, which drain and fill again dozens of times a second, take the same few rings in turn (measured without
// them: 7439 rings of 128 KiB made in a fan-out of 2000 puts to 10k watchers).
const spareRings: Uint8Array[] = [];
const MAX_SPARE_RINGS = 16;

export class H2Stream {
  handler: StreamHandler | undefined;
  // Flow-control windows: what we may still send, and what the peer may still send us.
  sendWindow: number;
  recvWindow: number;
  // Bytes handed to the handler (or discarded) but not yet returned to the peer with WINDOW_UPDATE.
  unacked = 0;
  // Response data waiting for window: chunks, and the offset into the first.
  readonly queue: Uint8Array[] = [];
  queueOffset = 0;
  queued = 0;
  // Copies of queued chunks whose memory their writer reuses (keepCopy), in order from ringHead to ringTail,
  // wrapping around. A stream whose reader is slow had every response copied into an ArrayBuffer of its own,
  // garbage outside V8's heap kept until a major GC (637 MiB over a fan-out of 2000 puts to 10k watchers).
  #ring: Uint8Array | undefined;
  #ringHead = 0;
  #ringTail = 0;
  #ringHeld = 0;
  #copies = 0;
  // end() was called: after the queue, trailers (or an empty END_STREAM DATA frame) close our side.
  ending = false;
  trailers: HeaderBlock | undefined;
  headersSent = false;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  rstCode = 0;
  needDrain = false;
  #paused = false;
  // Body chunks that arrived while paused or before a handler was attached; bounded by the receive window.
  #inbox: Uint8Array[] = [];
  #inboxEnded = false;

  constructor(
    readonly id: number,
    readonly headers: HeaderMap,
    readonly sink: StreamSink,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  // Attaches the handler and delivers anything that arrived before it.
  attach(handler: StreamHandler): void {
    this.handler = handler;
    if (!this.#paused) this.#flushInbox();
  }

  // Stops delivering onData; the peer is held back by flow control (the window is not replenished).
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#flushInbox();
  }

  respond(headers: HeaderBlock, endStream = false): void {
    if (this.headersSent || this.closed) return;
    this.headersSent = true;
    if (endStream) this.ending = true;
    this.sink.sendHeaders(this, headers, endStream);
  }

  // Queues response data; false when the caller should wait for onDrain.
  write(data: Uint8Array): boolean {
    if (this.closed || this.ending) return false;
    if (data.length > 0) {
      this.queue.push(data);
      this.queued += data.length;
      this.sink.sendData(this);
    }
    if (this.queued < WRITE_HIGH_WATER) return true;
    this.needDrain = true;
    return false;
  }

  // data, given to write() or end(), is about to be overwritten by its owner: whatever of it is still queued is
  // replaced by a copy. A stream that needs more than one copy keeps them in a ring, until they have all gone out.
  keepCopy(data: Uint8Array): void {
    const i = this.queue.lastIndexOf(data);
    if (i < 0) return;
    const n = data.length;
    if (++this.#copies > 1 && this.#ring === undefined) {
      this.#ring = spareRings.pop() ?? new Uint8Array(RING_BYTES);
    }
    const at = this.#ring === undefined ? -1 : this.#ringPlace(n);
    if (at < 0) {
      if (this.#ringHeld === 0) this.#giveRingBack(); // too large for it: not kept unused
      this.queue[i] = new Uint8Array(data);
      return;
    }
    const copy = this.#ring!.subarray(at, at + n);
    copy.set(data);
    this.queue[i] = copy;
    this.#ringTail = at + n;
    this.#ringHeld++;
  }

  // Where n contiguous bytes fit in the ring after its newest copy, or -1.
  #ringPlace(n: number): number {
    if (this.#ringHeld === 0) this.#ringHead = this.#ringTail = 0;
    const head = this.#ringHead, tail = this.#ringTail;
    if (tail >= head) {
      if (tail + n <= RING_BYTES) return tail;
      return n < head ? 0 : -1;
    }
    return tail + n < head ? tail : -1;
  }

  // Connection side: the first queued chunk went out whole.
  dropFirst(): void {
    const chunk = this.queue.shift()!;
    this.queueOffset = 0;
    if (this.#ringHeld === 0 || chunk.buffer !== this.#ring!.buffer) return;
    if (--this.#ringHeld > 0) this.#ringHead = chunk.byteOffset + chunk.length;
    else this.#giveRingBack();
  }

  // No copy is left in the ring: nothing refers to it any more (DATA frames are copies of the queue's bytes).
  #giveRingBack(): void {
    if (this.#ring !== undefined && spareRings.length < MAX_SPARE_RINGS) spareRings.push(this.#ring);
    this.#ring = undefined;
  }

  // Ends the response: optional last data, then trailers (or END_STREAM on the data).
  end(data?: Uint8Array, trailers?: HeaderBlock): void {
    if (this.closed || this.ending) return;
    if (data !== undefined && data.length > 0) {
      this.queue.push(data);
      this.queued += data.length;
    }
    this.ending = true;
    this.trailers = trailers;
    this.sink.sendData(this);
  }

  reset(code: number): void {
    if (!this.closed) this.sink.reset(this, code);
  }

  // Connection side: a DATA payload (possibly empty) and whether it carried END_STREAM.
  receive(data: Uint8Array, end: boolean): void {
    if (end) this.remoteEnded = true;
    if (this.handler === undefined || this.#paused || this.#inbox.length > 0) {
      if (data.length > 0) this.#inbox.push(data);
      if (end) this.#inboxEnded = true;
      return;
    }
    if (data.length > 0) {
      this.handler.onData(data);
      this.sink.consumed(this, data.length);
    }
    if (end && !this.closed) this.handler.onEnd();
  }

  #flushInbox() {
    const h = this.handler;
    if (h === undefined) return;
    while (this.#inbox.length > 0 && !this.#paused && !this.closed) {
      const chunk = this.#inbox.shift()!;
      h.onData(chunk);
      this.sink.consumed(this, chunk.length);
    }
    if (this.#inbox.length === 0 && this.#inboxEnded && !this.#paused && !this.closed) {
      this.#inboxEnded = false;
      h.onEnd();
    }
  }

  // Connection side: the stream is finished; `aborted` unless both sides ended cleanly.
  close(aborted: boolean, code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = code;
    this.queue.length = 0;
    this.queued = 0;
    this.#ringHeld = 0;
    this.#giveRingBack();
    // Unread body still counts against the connection window: return it.
    let unread = 0;
    for (const c of this.#inbox) unread += c.length;
    this.#inbox.length = 0;
    if (unread > 0) this.sink.consumed(this, unread);
    this.handler?.onClose(aborted);
  }
}
