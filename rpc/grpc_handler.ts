// The gRPC fast path: gRPC over HTTP/2 served straight from rpc/h2 streams, without a node-style request/response
// layer or connect's generic handler (measured ~2x faster; see scripts/rpc_bench.sh).

import type { Buffer } from "node:buffer";
import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { encodeFrame, FrameReader } from "./grpc_frame.ts";
import { FAST_DECODERS, FAST_FRAME_ENCODERS, reclaimFrame } from "./fast_codec.ts";
import { GrpcContext, type Headerish } from "./grpc_context.ts";
import { CANCEL } from "./h2/frames.ts";
import { encodeHeaders } from "./h2/hpack.ts";
import type { H2Stream, HeaderBlock, StreamHandler } from "./h2/stream.ts";
import { MessageQueue } from "./message_queue.ts";
import { encodeGrpcMessage, type RpcStatus, statusFromError } from "./rpc_status.ts";
import type { Backlogged, MethodEntry, MethodTable } from "./services.ts";
import { GrpcCode } from "./status_codes.ts";

export interface GrpcHandlerOptions {
  // Largest request message accepted (etcd: --max-request-bytes + 512 KiB).
  readonly maxRecvBytes: number;
  // Requests buffered per streaming call before the HTTP/2 stream is paused.
  readonly streamHighWaterMark?: number;
  readonly observer?: GrpcObserver;
}

/** What the server's metrics count of gRPC calls (go-grpc-prometheus's, and etcd's codec byte counters). */
export interface GrpcObserver {
  started(entry: MethodEntry): void;
  handled(entry: MethodEntry, code: number): void;
  /** Bytes of request and response messages, frame headers not included (etcd counts them in its codec). */
  received(bytes: number): void;
  sent(bytes: number): void;
}

const NO_OBSERVER: GrpcObserver = { started() {}, handled() {}, received() {}, sent() {} };

export type GrpcStreamHandler = (stream: H2Stream) => void;

// The constant header sets, HPACK-encoded once; used whenever the implementation added nothing to them.
const RESPONSE_HEADERS: Headerish = Object.freeze({ ":status": 200, "content-type": "application/grpc" });
const OK_TRAILERS: Headerish = Object.freeze({ "grpc-status": "0" });
const RESPONSE_HEADERS_BLOCK = encodeHeaders(RESPONSE_HEADERS);
const OK_TRAILERS_BLOCK = encodeHeaders(OK_TRAILERS);

export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType === "application/grpc" || contentType === "application/grpc+proto";
}

export function createGrpcHandler(table: MethodTable, opts: GrpcHandlerOptions): GrpcStreamHandler {
  const hwm = opts.streamHighWaterMark ?? 16;
  const observer = opts.observer ?? NO_OBSERVER;
  return (stream) => {
    const headers = stream.headers;
    const entry = table.get(headers[":path"]);
    if (!entry) {
      trailersOnly(stream, { code: GrpcCode.Unimplemented, message: `unknown method ${headers[":path"]}` });
      return stream.attach(DISCARD);
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      const message = `grpc: Decompressor is not installed for grpc-encoding "${encoding}"`;
      trailersOnly(stream, { code: GrpcCode.Unimplemented, message });
      return stream.attach(DISCARD);
    }
    const timeout = headers["grpc-timeout"];
    const deadline = timeout === undefined ? undefined : parseTimeout(timeout);
    const ctx = new GrpcContext(entry.service, entry.method, headers, deadline);
    const kind = entry.call.kind;
    observer.started(entry);
    const call = kind === "unary" || kind === "server_streaming"
      ? new SingleCall(stream, ctx, entry, opts.maxRecvBytes, observer)
      : new StreamCall(stream, ctx, entry, opts.maxRecvBytes, observer, hwm);
    if (deadline !== undefined) armDeadline(call, deadline);
    stream.attach(call);
    call.start();
  };
}

const ITERATION_DONE: IteratorResult<unknown> = Object.freeze({ value: undefined, done: true });

// For streams answered before reading them: the request body is dropped (its window still returns to the peer).
const DISCARD: StreamHandler = { onData() {}, onEnd() {}, onDrain() {}, onClose() {} };

// Per-call state and the stream's handler: makes sure exactly one status goes out, whichever of the
// implementation, the decoder, the deadline or the client finishes the call first.
abstract class Call implements StreamHandler {
  headersSent = false;
  done = false;
  // The deadline bucket the call waits in, if it has a deadline.
  deadlineBucket: Set<Call> | undefined;
  // Bytes the client may still send after fail() before it is reset; -1 while the call reads its input.
  #discardLeft = -1;
  #drainWaiter: (() => void) | undefined;
  #closeWaiter: ((r: IteratorResult<unknown>) => void) | undefined;

  constructor(
    readonly stream: H2Stream,
    readonly ctx: GrpcContext,
    readonly entry: MethodEntry,
    readonly maxRecvBytes: number,
    readonly observer: GrpcObserver,
  ) {}

  abstract start(): void;
  abstract receive(chunk: Uint8Array): void;
  abstract onEnd(): void;
  abstract closed(aborted: boolean): void;

  onData(chunk: Uint8Array): void {
    if (this.#discardLeft < 0) return this.receive(chunk);
    this.#discardLeft -= chunk.length;
    if (this.#discardLeft < 0) this.stream.reset(CANCEL);
  }

  onDrain(): void {
    const w = this.#drainWaiter;
    this.#drainWaiter = undefined;
    w?.();
  }

  onClose(aborted: boolean): void {
    // gone before a status went out: the client canceled
    if (!this.done) this.observer.handled(this.entry, GrpcCode.Canceled);
    this.deadlineBucket?.delete(this);
    this.closed(aborted || !this.done);
    this.onDrain();
    this.#closeWaiter?.(ITERATION_DONE);
  }

  // Resolves when write() may be called again (or the stream is gone).
  drained(): Promise<void> {
    return new Promise((resolve) => (this.#drainWaiter = resolve));
  }

  // The implementation's next response, or the end of the iteration when the stream closes first. The close waiter
  // is replaced on every call: Promise.race against one long-lived "closed" promise would leave a reaction on it per
  // message, which a long stream (a watch) piles up without bound.
  nextOrClosed(it: AsyncIterator<unknown>): Promise<IteratorResult<unknown>> {
    if (this.stream.closed) return Promise.resolve(ITERATION_DONE);
    return new Promise((resolve, reject) => {
      this.#closeWaiter = resolve;
      it.next().then(resolve, reject);
    });
  }

  expire() {
    this.deadlineBucket = undefined;
    this.ctx.abort(new ConnectError("context deadline exceeded", GrpcCode.DeadlineExceeded));
    this.fail({ code: GrpcCode.DeadlineExceeded, message: "context deadline exceeded" }, 0);
  }

  sendHeaders() {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(block(this.ctx.addResponseHeaders(RESPONSE_HEADERS), RESPONSE_HEADERS, RESPONSE_HEADERS_BLOCK));
  }

  // Unary success: headers, one message and trailers, all in the connection's next write.
  replyOne(frame: Buffer) {
    if (!this.done && !this.stream.closed) {
      this.done = true;
      this.observer.sent(frame.length - 5);
      this.observer.handled(this.entry, GrpcCode.OK);
      this.deadlineBucket?.delete(this);
      this.sendHeaders();
      this.stream.end(frame, this.#okTrailers());
    }
    reclaimFrame(frame, this.stream);
  }

  write(frame: Buffer): boolean {
    this.observer.sent(frame.length - 5);
    this.sendHeaders();
    const room = this.stream.write(frame);
    reclaimFrame(frame, this.stream);
    return room;
  }

  finish(status: RpcStatus) {
    if (this.done) return;
    this.done = true;
    this.observer.handled(this.entry, status.code);
    this.deadlineBucket?.delete(this);
    if (this.stream.closed) return;
    if (!this.headersSent) return trailersOnly(this.stream, status, this.ctx);
    const trailers = status.code === GrpcCode.OK
      ? this.#okTrailers()
      : this.ctx.addResponseTrailers(statusTrailers(status));
    this.stream.end(undefined, trailers);
  }

  #okTrailers(): HeaderBlock {
    return block(this.ctx.addResponseTrailers(OK_TRAILERS), OK_TRAILERS, OK_TRAILERS_BLOCK);
  }

  // Answers with an error and stops reading: what the client still sends is discarded, and a client that goes on
  // sending past maxDiscard bytes is reset with CANCEL (NO_ERROR, grpc-go's choice, leaves node's client hanging
  // mid-upload; the status already went out, so clients report it either way).
  fail(status: RpcStatus, maxDiscard: number) {
    if (this.done) return;
    this.finish(status);
    this.ctx.abort(new ConnectError(status.message, status.code));
    this.#discardLeft = maxDiscard;
    this.stream.resume();
  }
}

function block(h: Headerish, constant: Headerish, encoded: Uint8Array): HeaderBlock {
  return h === constant ? encoded : h;
}

function statusTrailers({ code, message }: RpcStatus): Headerish {
  return { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) };
}

function trailersOnly(stream: H2Stream, status: RpcStatus, ctx?: GrpcContext) {
  if (stream.closed || stream.headersSent) return;
  let h: Headerish = { ...RESPONSE_HEADERS, ...statusTrailers(status) };
  if (ctx) h = ctx.addResponseTrailers(ctx.addResponseHeaders(h));
  stream.respond(h, true);
}

function decode(schema: DescMessage, bytes: Uint8Array): MessageShape<DescMessage> {
  const fast = FAST_DECODERS.get(schema.typeName)?.(bytes);
  if (fast !== undefined) return fast as MessageShape<DescMessage>;
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new ConnectError(`grpc: error unmarshalling request: ${(e as Error).message}`, GrpcCode.Internal);
  }
}

function encode(schema: DescMessage, res: unknown): Buffer {
  const fast = FAST_FRAME_ENCODERS.get(schema.typeName)?.(res);
  if (fast !== undefined) return fast;
  const msg = (res as { $typeName?: string }).$typeName === schema.typeName
    ? res as MessageShape<DescMessage>
    : create(schema, res as MessageShape<DescMessage>);
  return encodeFrame(toBinary(schema, msg));
}

// Unary and server-streaming: exactly one request message, then call.
class SingleCall extends Call {
  readonly #reader = new FrameReader(this.maxRecvBytes);
  readonly #messages: Uint8Array[] = [];

  start(): void {}

  receive(chunk: Uint8Array): void {
    try {
      this.#reader.push(chunk as Buffer, this.#messages);
    } catch (e) {
      this.fail(statusFromError(e), this.maxRecvBytes);
    }
  }

  onEnd(): void {
    if (this.done) return;
    const messages = this.#messages;
    if (messages.length !== 1 || !this.#reader.idle) {
      const message = messages.length === 0
        ? "grpc: error while receiving request: EOF"
        : "grpc: too many request messages for a unary call";
      return this.fail({ code: GrpcCode.Internal, message }, this.maxRecvBytes);
    }
    const entry = this.entry;
    let req: MessageShape<DescMessage>;
    try {
      this.observer.received(messages[0].length);
      req = decode(entry.method.input, messages[0]);
    } catch (e) {
      return this.fail(statusFromError(e), this.maxRecvBytes);
    }
    if (entry.call.kind === "unary") runUnary(this, entry, req);
    else if (entry.call.kind === "server_streaming") pump(this, entry, entry.call.fn(req, this.ctx));
  }

  closed(aborted: boolean): void {
    if (aborted) this.ctx.abort(new ConnectError("client canceled", GrpcCode.Canceled));
  }
}

function runUnary(call: Call, entry: MethodEntry, req: MessageShape<DescMessage>) {
  if (entry.call.kind !== "unary") return;
  const output = entry.method.output;
  let res;
  try {
    res = entry.call.fn(req, call.ctx);
  } catch (e) {
    return call.finish(statusFromError(e));
  }
  // A synchronous answer goes out in the same tick.
  if (typeof (res as Promise<unknown>).then !== "function") return replyUnary(call, output, res);
  (res as Promise<unknown>).then((r) => replyUnary(call, output, r), (e) => call.finish(statusFromError(e)));
}

function replyUnary(call: Call, output: DescMessage, res: unknown) {
  let frame: Buffer;
  try {
    frame = encode(output, res);
  } catch (e) {
    return call.finish(statusFromError(e));
  }
  call.replyOne(frame);
}

// Client- and bidi-streaming: requests are decoded as they arrive and fed to the implementation as an iterable;
// a full queue pauses the stream, which holds the client back through flow control.
class StreamCall extends Call {
  readonly #reader = new FrameReader(this.maxRecvBytes);
  readonly #batch: Uint8Array[] = [];
  readonly #input: MessageQueue<MessageShape<DescMessage>>;

  constructor(
    stream: H2Stream,
    ctx: GrpcContext,
    entry: MethodEntry,
    maxRecvBytes: number,
    observer: GrpcObserver,
    hwm: number,
  ) {
    super(stream, ctx, entry, maxRecvBytes, observer);
    this.#input = new MessageQueue(hwm, () => stream.resume());
  }

  start(): void {
    const c = this.entry.call;
    const input = this.#input;
    if (c.kind === "bidi_streaming") pump(this, this.entry, c.fn(input, this.ctx));
    else if (c.kind === "client_streaming") {
      Promise.resolve().then(() => c.fn(input, this.ctx)).then(
        (r) => replyUnary(this, this.entry.method.output, r),
        (e) => this.finish(statusFromError(e)),
      );
    }
  }

  receive(chunk: Uint8Array): void {
    const batch = this.#batch;
    try {
      this.#reader.push(chunk as Buffer, batch);
      let more = true;
      for (const m of batch) {
        this.observer.received(m.length);
        more = this.#input.push(decode(this.entry.method.input, m)) && more;
      }
      if (!more) this.stream.pause();
    } catch (e) {
      const status = statusFromError(e);
      this.#input.end(new ConnectError(status.message, status.code));
      this.fail(status, this.maxRecvBytes);
    } finally {
      batch.length = 0;
    }
  }

  onEnd(): void {
    this.#input.end();
  }

  // The client went away: the implementation's input ends and its signal fires.
  closed(aborted: boolean): void {
    if (!aborted) return;
    this.#input.end();
    this.ctx.abort(new ConnectError("client canceled", GrpcCode.Canceled));
  }
}

// Writes an implementation's responses as they come, honouring HTTP/2 flow control: waits for the drain signal
// when the stream's queue is full, and stops early (without waiting for the implementation) when the client goes.
async function pump(call: Call, entry: MethodEntry, out: AsyncIterable<unknown>) {
  const { stream } = call;
  let it: AsyncIterator<unknown> | undefined;
  try {
    it = out[Symbol.asyncIterator]();
    const takeSync = (it as Partial<Backlogged<unknown>>).takeSync?.bind(it);
    for (;;) {
      const r = await call.nextOrClosed(it);
      if (r.done || call.done) break;
      let room = call.write(encode(entry.method.output, r.value));
      while (room && takeSync !== undefined && !call.done && !stream.closed) {
        const more = takeSync();
        if (more === undefined) break;
        room = call.write(encode(entry.method.output, more));
      }
      if (!room) await call.drained();
    }
    if (stream.closed || call.done) {
      it.return?.()?.catch(() => {});
      call.done = true;
      return;
    }
    call.finish({ code: GrpcCode.OK, message: "" });
  } catch (e) {
    call.finish(statusFromError(e));
  }
}

// Call deadlines, rounded up to DEADLINE_TICK_MS, wait in one Set per tick; a single timer serves the earliest tick
// that still holds calls. A Node timer per call was ~10% of the bytes a put with a grpc-timeout allocated; calls
// mostly finish long before their deadline, so under load the timer rarely fires. Deadlines fire up to a tick late.
const DEADLINE_TICK_MS = 10;
const deadlineBuckets = new Map<number, Set<Call>>();
const deadlineTicks: number[] = []; // min-heap of the ticks in deadlineBuckets (and ticks since emptied)
let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
let deadlineTimerTick = Infinity;

function armDeadline(call: Call, deadline: number) {
  const tick = Math.ceil(deadline / DEADLINE_TICK_MS);
  let bucket = deadlineBuckets.get(tick);
  if (bucket === undefined) {
    bucket = new Set();
    deadlineBuckets.set(tick, bucket);
    heapPush(deadlineTicks, tick);
    if (tick < deadlineTimerTick) setDeadlineTimer(tick);
  }
  bucket.add(call);
  call.deadlineBucket = bucket;
}

function setDeadlineTimer(tick: number) {
  clearTimeout(deadlineTimer);
  deadlineTimerTick = tick;
  deadlineTimer = setTimeout(expireDeadlines, Math.max(0, tick * DEADLINE_TICK_MS - Date.now()));
}

function expireDeadlines() {
  deadlineTimer = undefined;
  deadlineTimerTick = Infinity;
  const now = Date.now();
  while (deadlineTicks.length > 0) {
    const tick = deadlineTicks[0];
    const bucket = deadlineBuckets.get(tick)!;
    if (bucket.size > 0 && tick * DEADLINE_TICK_MS > now) return setDeadlineTimer(tick);
    heapPop(deadlineTicks);
    deadlineBuckets.delete(tick);
    for (const call of bucket) call.expire();
  }
}

function heapPush(h: number[], v: number) {
  let i = h.push(v) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent] <= v) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = v;
}

function heapPop(h: number[]) {
  const last = h.pop()!;
  if (h.length === 0) return;
  let i = 0;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= h.length) break;
    if (c + 1 < h.length && h[c + 1] < h[c]) c++;
    if (h[c] >= last) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

// grpc-timeout: up to 8 digits and a unit (H, M, S, m, u, n).
function parseTimeout(value: string): number | undefined {
  const unit = TIMEOUT_UNIT_MS[value[value.length - 1]];
  const n = Number(value.slice(0, -1));
  if (unit === undefined || !Number.isFinite(n)) return undefined;
  return Date.now() + n * unit;
}
