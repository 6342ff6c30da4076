// Node-style request/response objects over an H2Stream for the routes that are not the gRPC fast path (Connect,
// gRPC-web, the JSON gateway, CORS, plain endpoints). They implement the part of node's Http2ServerRequest /
// Http2ServerResponse those routes and connect-node's adapter use: a Readable body, writeHead/setHeader/write/
// end/addTrailers, 'drain' and 'close' events, and `stream.rstCode` for cancellation.

import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { OutgoingHeaders } from "./hpack.ts";
import type { H2Stream, StreamHandler } from "./stream.ts";
import { CompatResponse, type HeaderInit } from "../compat_response.ts";

// Connection-specific fields are not allowed in HTTP/2 (RFC 9113 §8.2.2).
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

export class H2ServerRequest extends Readable implements StreamHandler {
  readonly httpVersion = "2.0";
  readonly method: string;
  readonly url: string;
  readonly authority: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly response: H2ServerResponse;

  constructor(readonly h2: H2Stream, readonly socket: Socket) {
    // 'close' is emitted when the stream closes, not when the body has been read: connect-node aborts the
    // call's signal on it.
    super({ autoDestroy: false, emitClose: false });
    this.headers = h2.headers;
    this.method = h2.headers[":method"];
    this.url = h2.headers[":path"];
    this.authority = h2.headers[":authority"] ?? h2.headers.host;
    this.response = new H2ServerResponse(h2);
    h2.attach(this);
  }

  // connect-node reads the reset code from here when the request closes.
  get stream(): { readonly rstCode: number } {
    return this.h2;
  }

  override _read(): void {
    this.h2.resume();
  }

  onData(chunk: Uint8Array): void {
    if (!this.push(chunk)) this.h2.pause();
  }

  onEnd(): void {
    this.push(null);
  }

  onDrain(): void {
    this.response.emit("drain");
  }

  onClose(aborted: boolean): void {
    if (aborted) this.emit("aborted");
    this.emit("close");
    this.response.finished(aborted);
  }
}

export class H2ServerResponse extends CompatResponse {
  constructor(readonly h2: H2Stream) {
    super();
  }

  get headersSent(): boolean {
    return this.h2.headersSent;
  }

  writeHead(status: number, headers?: HeaderInit): this {
    if (this.h2.headersSent) return this;
    this.statusCode = status;
    this.h2.respond({ ":status": status, ...this.merged(headers, (name) => HOP_BY_HOP.has(name)) });
    return this;
  }

  write(data: string | Uint8Array, encoding?: unknown, cb?: (e?: Error) => void): boolean {
    if (typeof encoding === "function") cb = encoding as (e?: Error) => void;
    if (!this.h2.headersSent) this.writeHead(this.statusCode);
    const ok = this.h2.write(typeof data === "string" ? Buffer.from(data) : data);
    if (cb) queueMicrotask(() => cb());
    return ok || this.h2.closed; // after a reset, writes are discarded (the call's signal has fired)
  }

  end(data?: string | Uint8Array | (() => void), cb?: () => void): this {
    if (typeof data === "function") [cb, data] = [data, undefined];
    if (this.writableEnded) return this;
    this.writableEnded = true;
    if (!this.h2.headersSent) this.writeHead(this.statusCode);
    const bytes = data === undefined ? undefined : typeof data === "string" ? Buffer.from(data) : data;
    this.h2.end(bytes, this.trailers as OutgoingHeaders | undefined);
    this.emit("finish");
    this.emit("end"); // connect-node waits for it after end()
    cb?.();
    return this;
  }

  // The stream closed: 'close' for listeners that cancel work (the gateway), an error if it was cut short.
  finished(aborted: boolean): void {
    if (aborted && !this.writableEnded) this.errored = new Error("http2 stream reset");
    this.emit("drain"); // nobody waits for room on a stream that is gone
    this.emit("close");
  }
}
