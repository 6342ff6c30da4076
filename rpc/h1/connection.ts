// HTTP/1.1 on an accepted socket (after the listener's sniff), for Connect, gRPC-web, the JSON gateway and the plain
// endpoints: detcd's own, because Deno's node:http answers only the first request of a socket handed to it (and a
// private relay port would be a listener nobody configured). Requests on a connection are served one at a time, in
// order (pipelined ones wait, bounded); request bodies are Content-Length or chunked; responses carry
// Content-Length when it is known at the first write, else chunked transfer coding (HTTP/1.0: the close ends them).
// The request and response objects are the part of node's IncomingMessage / ServerResponse that the routes and
// connect-node's adapter use.
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { CompatResponse, type HeaderInit, type HeaderValue } from "../compat_response.ts";

/** A request head larger than this is refused (431), as node's default --max-http-header-size. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Bytes of pipelined requests buffered while one is being answered; past it, reading stops. */
const MAX_BUFFERED = 64 * 1024;
const CRLF2 = Buffer.from("\r\n\r\n");
const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n");
const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};
/** Framing is the connection's business: handlers' values for these are ignored. */
const FRAMING = new Set(["connection", "keep-alive", "transfer-encoding"]);

export type H1Handler = (req: H1ServerRequest, res: H1ServerResponse) => void;

class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class H1Connection {
  #buf: Buffer = Buffer.alloc(0);
  #req: H1ServerRequest | undefined;
  #res: H1ServerResponse | undefined;
  /** Request body left to read: bytes (Content-Length), -1 chunked, 0 none. */
  #bodyLeft = 0;
  /** Chunked body: bytes left in the current chunk, -1 between chunks. */
  #chunkLeft = -1;
  #closing = false;
  #dead = false;

  constructor(readonly socket: Socket, seen: Buffer, private readonly handler: H1Handler) {
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("drain", () => this.#res?.emit("drain"));
    socket.once("close", () => this.#onClose());
    this.#onData(seen);
  }

  /** A request is being answered. */
  get busy(): boolean {
    return this.#res !== undefined;
  }

  /** Ends the connection once the response in progress (if any) is done. */
  close(): void {
    this.#closing = true;
    if (!this.busy) this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    try {
      this.#parse();
    } catch (e) {
      if (!(e instanceof BadRequest)) throw e;
      this.#fail(e.status, e.message);
    }
  }

  #parse(): void {
    for (;;) {
      if (this.#req !== undefined && this.#bodyLeft !== 0) {
        if (!this.#readBody()) return;
        continue;
      }
      if (this.#res !== undefined) {
        // pipelined requests wait for the response in progress
        if (this.#buf.length > MAX_BUFFERED) this.socket.pause();
        return;
      }
      const end = this.#buf.indexOf(CRLF2);
      if (end < 0) {
        if (this.#buf.length > MAX_HEAD_BYTES) throw new BadRequest(431, "request header too large");
        return;
      }
      if (end > MAX_HEAD_BYTES) throw new BadRequest(431, "request header too large");
      const head = this.#buf.toString("latin1", 0, end);
      this.#buf = this.#buf.subarray(end + 4);
      this.#start(head);
    }
  }

  #start(head: string): void {
    const lines = head.split("\r\n");
    const m = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0]);
    if (m === null) throw new BadRequest(400, "malformed request line");
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(":");
      if (colon <= 0) throw new BadRequest(400, "malformed header line");
      const name = lines[i].slice(0, colon).trim().toLowerCase();
      const value = lines[i].slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const minor = m[3];
    const conn = (headers.connection ?? "").toLowerCase();
    const keepAlive = minor === "1" ? !conn.includes("close") : conn.includes("keep-alive");
    if (headers["transfer-encoding"] !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(headers["transfer-encoding"])) {
        throw new BadRequest(501, "unsupported transfer-encoding");
      }
      this.#bodyLeft = -1;
      this.#chunkLeft = -1;
    } else if (headers["content-length"] !== undefined) {
      if (!/^\d+$/.test(headers["content-length"])) throw new BadRequest(400, "bad content-length");
      this.#bodyLeft = Number(headers["content-length"]);
    } else {
      this.#bodyLeft = 0;
    }
    const req = new H1ServerRequest(this.socket, m[1], m[2], `1.${minor}`, headers);
    const res = new H1ServerResponse(this, req, keepAlive && !this.#closing, minor === "1");
    this.#req = req;
    this.#res = res;
    if ((headers.expect ?? "").toLowerCase() === "100-continue" && this.#bodyLeft !== 0) this.socket.write(CONTINUE);
    if (this.#bodyLeft === 0) req.push(null);
    this.handler(req, res);
  }

  /** Hands buffered body bytes to the request; false when more must arrive first. */
  #readBody(): boolean {
    const req = this.#req!;
    if (this.#bodyLeft > 0) {
      if (this.#buf.length === 0) return false;
      const n = Math.min(this.#bodyLeft, this.#buf.length);
      this.#deliver(req, this.#buf.subarray(0, n));
      this.#buf = this.#buf.subarray(n);
      this.#bodyLeft -= n;
      if (this.#bodyLeft === 0) req.push(null);
      return true;
    }
    // chunked: size line, data, CRLF; a zero size ends it (trailers, if any, are skipped)
    if (this.#chunkLeft < 0) {
      const eol = this.#buf.indexOf("\r\n");
      if (eol < 0) {
        if (this.#buf.length > 1024) throw new BadRequest(400, "malformed chunk size");
        return false;
      }
      const size = parseInt(this.#buf.toString("latin1", 0, eol).split(";")[0], 16);
      if (!Number.isFinite(size) || size < 0) throw new BadRequest(400, "malformed chunk size");
      if (size === 0) {
        const end = this.#buf.indexOf(CRLF2, eol);
        const bare = this.#buf.subarray(eol, eol + 4).equals(CRLF2);
        if (!bare && end < 0) return false;
        this.#buf = this.#buf.subarray((bare ? eol : end) + 4);
        this.#bodyLeft = 0;
        req.push(null);
        return true;
      }
      this.#buf = this.#buf.subarray(eol + 2);
      this.#chunkLeft = size;
    }
    if (this.#chunkLeft > 0) {
      if (this.#buf.length === 0) return false;
      const n = Math.min(this.#chunkLeft, this.#buf.length);
      this.#deliver(req, this.#buf.subarray(0, n));
      this.#buf = this.#buf.subarray(n);
      this.#chunkLeft -= n;
    }
    if (this.#chunkLeft === 0) {
      if (this.#buf.length < 2) return false;
      this.#buf = this.#buf.subarray(2);
      this.#chunkLeft = -1;
    }
    return true;
  }

  #deliver(req: H1ServerRequest, data: Buffer): void {
    // a copy: the connection's buffer is reused; a full request stops the socket until it is read
    if (!req.push(Buffer.from(data))) this.socket.pause();
  }

  /** The response is complete: the next request, or the end of the connection. */
  finished(res: H1ServerResponse): void {
    if (res !== this.#res) return;
    const req = this.#req!;
    this.#res = undefined;
    res.emit("close");
    if (!res.keepAlive || this.#closing || this.#bodyLeft !== 0) {
      // a request body not read to its end leaves the connection unusable
      this.#dead = true;
      this.socket.end();
      return;
    }
    this.#req = undefined;
    req.emit("close");
    this.socket.resume();
    setImmediate(() => {
      if (this.#dead || this.#res !== undefined) return;
      try {
        this.#parse();
      } catch (e) {
        if (!(e instanceof BadRequest)) throw e;
        this.#fail(e.status, e.message);
      }
    });
  }

  #fail(status: number, message: string): void {
    this.#dead = true;
    if (this.#res === undefined || !this.#res.headersSent) {
      const body = `${message}\n`;
      this.socket.end(
        `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\nContent-Type: text/plain\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    } else {
      this.socket.destroy();
    }
  }

  #onClose(): void {
    this.#dead = true;
    const req = this.#req, res = this.#res;
    this.#req = this.#res = undefined;
    // a body cut short is an error of the request (its `errored`, as node's)
    if (req !== undefined && this.#bodyLeft !== 0) req.destroy(new Error("aborted"));
    if (res !== undefined) {
      if (!res.writableEnded) res.errored = new Error("socket closed before the response ended");
      res.emit("drain"); // nobody waits for room on a connection that is gone
      res.emit("close");
    }
    req?.emit("close");
  }
}

export class H1ServerRequest extends Readable {
  constructor(
    readonly socket: Socket,
    readonly method: string,
    readonly url: string,
    readonly httpVersion: string,
    readonly headers: Readonly<Record<string, string>>,
  ) {
    super({ autoDestroy: false, emitClose: false });
  }

  override _read(): void {
    this.socket.resume();
  }
}

export class H1ServerResponse extends CompatResponse {
  #headersSent = false;
  /** writeHead's headers, written with the first bytes of the body (or end()), when the framing is known. */
  #pendingHead: Record<string, HeaderValue> | undefined;
  /** -1: chunked; -2: until the connection closes (HTTP/1.0); else the Content-Length left. */
  #framing = -1;

  constructor(
    private readonly conn: H1Connection,
    private readonly req: H1ServerRequest,
    readonly keepAlive: boolean,
    private readonly http11: boolean,
  ) {
    super();
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  writeHead(status: number, headers?: HeaderInit): this {
    if (this.#headersSent) return this;
    this.statusCode = status;
    this.#headersSent = true;
    this.#pendingHead = this.merged(headers, (name) => FRAMING.has(name));
    return this;
  }

  write(data: string | Uint8Array, encoding?: unknown, cb?: (e?: Error) => void): boolean {
    if (typeof encoding === "function") cb = encoding as (e?: Error) => void;
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    this.#flushHead(undefined);
    const ok = this.#writeBody(bytes);
    if (cb) queueMicrotask(() => cb());
    return ok || this.conn.socket.destroyed;
  }

  /** Sends the head now (a long-lived response: the client learns its status before the first bytes of the body). */
  flushHeaders(): void {
    this.#flushHead(undefined);
  }

  end(data?: string | Uint8Array | (() => void), cb?: () => void): this {
    if (typeof data === "function") [cb, data] = [data, undefined];
    if (this.writableEnded) return this;
    const bytes = data === undefined ? undefined : typeof data === "string" ? Buffer.from(data) : data;
    // nothing written yet: the whole body is known, so is its length
    this.#flushHead(bytes?.length ?? 0);
    if (bytes !== undefined && bytes.length > 0) this.#writeBody(bytes);
    if (this.#framing === -1 && this.req.method !== "HEAD") this.#socketWrite(Buffer.from("0\r\n\r\n"));
    this.writableEnded = true;
    this.emit("finish");
    this.emit("end"); // connect-node waits for it after end()
    cb?.();
    this.conn.finished(this);
    return this;
  }

  /** Writes the head unless it is out: writeHead's, or the headers set so far. */
  #flushHead(knownLength: number | undefined): void {
    if (this.#headersSent && this.#pendingHead === undefined) return;
    const headers = this.#pendingHead ?? this.merged(undefined, (n) => FRAMING.has(n));
    this.#pendingHead = undefined;
    this.#headersSent = true;
    this.#writeHead(headers, knownLength);
  }

  #writeHead(headers: Record<string, HeaderValue>, knownLength: number | undefined): void {
    const bodiless = this.req.method === "HEAD" || this.statusCode === 204 || this.statusCode === 304;
    const declared = headers["content-length"];
    if (declared !== undefined) this.#framing = Number(declared);
    else if (knownLength !== undefined) {
      this.#framing = knownLength;
      if (!bodiless) headers["content-length"] = knownLength;
    } else if (this.http11) {
      this.#framing = -1;
      if (!bodiless) headers["transfer-encoding"] = "chunked";
    } else this.#framing = -2;
    if (bodiless && this.#framing === -1) this.#framing = 0;
    headers.connection = this.keepAlive && this.#framing !== -2 ? "keep-alive" : "close";
    let head = `HTTP/1.1 ${this.statusCode} ${REASONS[this.statusCode] ?? ""}\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
    }
    this.#socketWrite(Buffer.from(head + "\r\n", "latin1"));
  }

  #writeBody(bytes: Uint8Array): boolean {
    if (bytes.length === 0 || this.req.method === "HEAD") return true;
    if (this.#framing === -1) {
      return this.#socketWrite(Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, CRLF]));
    }
    return this.#socketWrite(bytes);
  }

  #socketWrite(b: Uint8Array): boolean {
    const s = this.conn.socket;
    if (s.destroyed || !s.writable) return false;
    return s.write(b);
  }
}

const CRLF = Buffer.from("\r\n");
