// The gRPC fast path: gRPC over HTTP/2 served straight from node:http2 server streams, without the http2
// compatibility layer or connect's generic handler (measured ~2x faster; see scripts/rpc_bench.sh).

import { Buffer } from "node:buffer";
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { encodeFrame, FrameReader } from "./grpc_frame.ts";
import { GrpcContext, type Headerish } from "./grpc_context.ts";
import { MessageQueue } from "./message_queue.ts";
import { encodeGrpcMessage, type RpcStatus, statusFromError } from "./rpc_status.ts";
import type { MethodEntry, MethodTable } from "./services.ts";
import { GrpcCode } from "./status_codes.ts";

export interface GrpcHandlerOptions {
  // Largest request message accepted (etcd: --max-request-bytes + 512 KiB).
  readonly maxRecvBytes: number;
  // Requests buffered per streaming call before the HTTP/2 stream is paused.
  readonly streamHighWaterMark?: number;
}

export type GrpcStreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

// Static header objects: built once, not per response.
const RESPONSE_HEADERS = Object.freeze({ ":status": 200, "content-type": "application/grpc" });
const OK_TRAILERS = Object.freeze({ "grpc-status": "0" });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });
const END_STREAM = Object.freeze({ endStream: true });
const { NGHTTP2_CANCEL } = http2.constants;

export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType === "application/grpc" || contentType === "application/grpc+proto";
}

export function createGrpcHandler(table: MethodTable, opts: GrpcHandlerOptions): GrpcStreamHandler {
  const hwm = opts.streamHighWaterMark ?? 16;
  return (stream, headers) => {
    const entry = table.get(headers[":path"] as string);
    if (!entry) {
      const path = String(headers[":path"]);
      return trailersOnly(stream, { code: GrpcCode.Unimplemented, message: `unknown method ${path}` });
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      const message = `grpc: Decompressor is not installed for grpc-encoding "${encoding}"`;
      return trailersOnly(stream, { code: GrpcCode.Unimplemented, message });
    }
    const timeout = headers["grpc-timeout"];
    const deadline = timeout === undefined ? undefined : parseTimeout(timeout as string);
    const ctx = new GrpcContext(entry.service, entry.method, headers, deadline);
    const call = new Call(stream, ctx);
    if (deadline !== undefined) call.armDeadline(deadline);
    const kind = entry.call.kind;
    if (kind === "unary" || kind === "server_streaming") readSingle(call, entry, opts.maxRecvBytes);
    else readStream(call, entry, opts.maxRecvBytes, hwm);
  };
}

// Per-call response state: makes sure exactly one status goes out, whichever of the implementation, the decoder,
// the deadline or the client finishes the call first.
class Call {
  headersSent = false;
  done = false;
  #trailers: Headerish = OK_TRAILERS;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly stream: ServerHttp2Stream, readonly ctx: GrpcContext) {}

  armDeadline(deadline: number) {
    const ms = Math.max(0, deadline - Date.now());
    this.#timer = setTimeout(() => {
      this.ctx.abort(new ConnectError("context deadline exceeded", GrpcCode.DeadlineExceeded));
      this.fail({ code: GrpcCode.DeadlineExceeded, message: "context deadline exceeded" }, 0);
    }, ms);
  }

  sendHeaders() {
    if (this.headersSent) return;
    this.headersSent = true;
    const h = this.ctx.addResponseHeaders(RESPONSE_HEADERS);
    this.stream.respond(h, WAIT_FOR_TRAILERS);
    this.stream.once("wantTrailers", () => {
      this.stream.sendTrailers(this.ctx.addResponseTrailers(this.#trailers));
    });
  }

  // Unary success: headers, one message and trailers in as few writes as node allows.
  replyOne(frame: Buffer) {
    if (this.done || this.stream.destroyed) return;
    this.done = true;
    clearTimeout(this.#timer);
    this.sendHeaders();
    this.stream.end(frame);
  }

  write(frame: Buffer): boolean {
    this.sendHeaders();
    return this.stream.write(frame);
  }

  finish(status: RpcStatus) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.#timer);
    if (this.stream.destroyed) return;
    if (!this.headersSent) return trailersOnly(this.stream, status, this.ctx);
    if (status.code !== GrpcCode.OK) this.#trailers = statusTrailers(status);
    this.stream.end();
  }

  // Answers with an error and stops reading: what the client still sends is discarded, and a client that goes on
  // sending past maxDiscard bytes is reset with CANCEL (NO_ERROR, grpc-go's choice, leaves node's client hanging
  // mid-upload; the status already went out, so clients report it either way).
  fail(status: RpcStatus, maxDiscard: number) {
    if (this.done) return;
    this.finish(status);
    this.ctx.abort(new ConnectError(status.message, status.code));
    const s = this.stream;
    if (s.destroyed) return;
    s.removeAllListeners("data");
    let discarded = 0;
    s.on("data", (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > maxDiscard && !s.destroyed) s.close(NGHTTP2_CANCEL);
    });
  }
}

function statusTrailers({ code, message }: RpcStatus): Headerish {
  return { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) };
}

function trailersOnly(stream: ServerHttp2Stream, status: RpcStatus, ctx?: GrpcContext) {
  if (stream.destroyed || stream.headersSent) return;
  let h: Headerish = { ...RESPONSE_HEADERS, ...statusTrailers(status) };
  if (ctx) h = ctx.addResponseTrailers(ctx.addResponseHeaders(h));
  stream.respond(h, END_STREAM);
}

function decode(schema: DescMessage, bytes: Uint8Array): MessageShape<DescMessage> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new ConnectError(`grpc: error unmarshalling request: ${(e as Error).message}`, GrpcCode.Internal);
  }
}

function encode(schema: DescMessage, res: unknown): Buffer {
  const msg = (res as { $typeName?: string }).$typeName === schema.typeName
    ? res as MessageShape<DescMessage>
    : create(schema, res as MessageShape<DescMessage>);
  return encodeFrame(toBinary(schema, msg));
}

// Unary and server-streaming: exactly one request message, then call.
function readSingle(call: Call, entry: MethodEntry, maxRecvBytes: number) {
  const { stream } = call;
  const reader = new FrameReader(maxRecvBytes);
  const messages: Uint8Array[] = [];
  stream.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk, messages);
    } catch (e) {
      call.fail(statusFromError(e), maxRecvBytes);
    }
  });
  stream.once("end", () => {
    if (call.done) return;
    if (messages.length !== 1 || !reader.idle) {
      const message = messages.length === 0
        ? "grpc: error while receiving request: EOF"
        : "grpc: too many request messages for a unary call";
      return call.fail({ code: GrpcCode.Internal, message }, maxRecvBytes);
    }
    let req: MessageShape<DescMessage>;
    try {
      req = decode(entry.method.input, messages[0]);
    } catch (e) {
      return call.fail(statusFromError(e), maxRecvBytes);
    }
    if (entry.call.kind === "unary") runUnary(call, entry, req);
    else if (entry.call.kind === "server_streaming") pump(call, entry, entry.call.fn(req, call.ctx));
  });
  stream.once("aborted", () => call.ctx.abort(new ConnectError("client canceled", GrpcCode.Canceled)));
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

// Client- and bidi-streaming: requests are decoded as they arrive and fed to the implementation as an iterable.
function readStream(call: Call, entry: MethodEntry, maxRecvBytes: number, hwm: number) {
  const { stream } = call;
  const reader = new FrameReader(maxRecvBytes);
  const input = new MessageQueue<MessageShape<DescMessage>>(hwm, () => stream.resume());
  const batch: Uint8Array[] = [];
  stream.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk, batch);
      let more = true;
      for (const m of batch) more = input.push(decode(entry.method.input, m)) && more;
      if (!more) stream.pause();
    } catch (e) {
      const status = statusFromError(e);
      input.end(new ConnectError(status.message, status.code));
      call.fail(status, maxRecvBytes);
    } finally {
      batch.length = 0;
    }
  });
  stream.once("end", () => input.end());
  // The client went away: the implementation's input ends and its signal fires.
  stream.once("close", () => {
    if (call.done) return;
    input.end();
    call.ctx.abort(new ConnectError("client canceled", GrpcCode.Canceled));
  });
  const c = entry.call;
  if (c.kind === "bidi_streaming") pump(call, entry, c.fn(input, call.ctx));
  else if (c.kind === "client_streaming") {
    Promise.resolve().then(() => c.fn(input, call.ctx)).then(
      (r) => replyUnary(call, entry.method.output, r),
      (e) => call.finish(statusFromError(e)),
    );
  }
}

// Writes an implementation's responses as they come, honouring HTTP/2 flow control: waits for 'drain' when the
// stream's buffer is full, and stops early (without waiting for the implementation) when the client goes away.
async function pump(call: Call, entry: MethodEntry, out: AsyncIterable<unknown>) {
  const { stream } = call;
  const closed = new Promise<IteratorResult<unknown>>((resolve) => {
    const onClose = () => resolve({ value: undefined, done: true });
    if (stream.destroyed) onClose();
    else stream.once("close", onClose);
  });
  let it: AsyncIterator<unknown> | undefined;
  try {
    it = out[Symbol.asyncIterator]();
    for (;;) {
      const r = await Promise.race([it.next(), closed]);
      if (r.done || call.done) break;
      if (!call.write(encode(entry.method.output, r.value))) {
        await Promise.race([new Promise((resolve) => stream.once("drain", resolve)), closed]);
      }
    }
    if (stream.destroyed || call.done) {
      it.return?.()?.catch(() => {});
      call.done = true;
      return;
    }
    call.finish({ code: GrpcCode.OK, message: "" });
  } catch (e) {
    call.finish(statusFromError(e));
  }
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

// grpc-timeout: up to 8 digits and a unit (H, M, S, m, u, n).
function parseTimeout(value: string): number | undefined {
  const unit = TIMEOUT_UNIT_MS[value[value.length - 1]];
  const n = Number(value.slice(0, -1));
  if (unit === undefined || !Number.isFinite(n)) return undefined;
  return Date.now() + n * unit;
}
