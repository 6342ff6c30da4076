// Dials a peer's stream over a plain TCP connection: one GET, then the response body as it arrives (chunked, as both
// detcd's and etcd's servers send a stream). fetch would do, but its web streams cost a busy member ~3% of its CPU
// (profile of all-endpoint puts), and a stream needs nothing else fetch adds.
import { Buffer } from "node:buffer";
import net from "node:net";

const MAX_HEAD_BYTES = 16 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const CRLF = Buffer.from("\r\n");

export interface DialOptions {
  headers: Record<string, string>;
  /** The connection is dropped after this long without a byte. */
  idleTimeoutMs: number;
  signal: AbortSignal;
  /** Each piece of a 200 response's body, in order. */
  onData: (chunk: Uint8Array) => void;
}

/**
 * GETs `url`: resolves with the status and (other than 200) the body's text; a 200 response's body goes to onData
 * until it ends, and then resolves. Rejects when the connection fails, stays silent, or sends what is not HTTP/1.1.
 */
export function dialStream(url: URL, opts: DialOptions): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) });
    socket.setNoDelay(true);
    socket.setTimeout(opts.idleTimeoutMs);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    const done = (status: number, text: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ status, text });
    };
    const onAbort = () => fail(new Error("stream reader stopped"));
    if (opts.signal.aborted) return onAbort();
    opts.signal.addEventListener("abort", onAbort, { once: true });
    socket.once("close", () => {
      opts.signal.removeEventListener("abort", onAbort);
      fail(new Error("connection closed"));
    });
    socket.on("error", (err) => fail(err));
    socket.on("timeout", () => fail(new Error("no data for the read timeout")));

    let head = "";
    for (const [k, v] of Object.entries(opts.headers)) head += `${k}: ${v}\r\n`;
    socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n${head}\r\n`);

    let buf: Buffer = Buffer.alloc(0);
    let status = 0;
    /** -1: chunked, -2: until the connection closes, else the Content-Length left. */
    let left = 0;
    let chunkLeft = -1; // chunked: bytes left of the current chunk, -1 between chunks
    let errorBody = "";
    const body = (part: Uint8Array) => {
      if (status === 200) opts.onData(part);
      else if (errorBody.length < MAX_ERROR_BODY_BYTES) errorBody += new TextDecoder().decode(part);
    };
    socket.on("data", (data: Buffer) => {
      buf = buf.length === 0 ? data : Buffer.concat([buf, data]);
      try {
        if (status === 0) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw new Error("response head too large");
            return;
          }
          const lines = buf.toString("latin1", 0, end).split("\r\n");
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
          if (m === null) throw new Error(`not an HTTP response: ${lines[0].slice(0, 40)}`);
          status = Number(m[1]);
          const headers = new Map(
            lines.slice(1).map((l) => {
              const i = l.indexOf(":");
              return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
            }),
          );
          if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) left = -1;
          else if (headers.has("content-length")) left = Number(headers.get("content-length"));
          else left = -2;
          buf = buf.subarray(end + 4);
          if (left === 0) return done(status, "");
        }
        if (left === -2) {
          body(buf);
          buf = Buffer.alloc(0);
          return;
        }
        if (left > 0) {
          const part = buf.subarray(0, left);
          body(part);
          left -= part.length;
          buf = buf.subarray(part.length);
          if (left === 0) done(status, errorBody);
          return;
        }
        // chunked: size line, data, CRLF; a zero size ends the body
        for (;;) {
          if (chunkLeft === -1) {
            const eol = buf.indexOf(CRLF);
            if (eol < 0) return;
            const size = parseInt(buf.toString("latin1", 0, eol).split(";")[0], 16);
            if (!Number.isFinite(size)) throw new Error("bad chunk size");
            buf = buf.subarray(eol + 2);
            if (size === 0) return done(status, errorBody);
            chunkLeft = size;
          }
          if (chunkLeft > 0) {
            if (buf.length === 0) return;
            const part = buf.subarray(0, chunkLeft);
            body(part);
            chunkLeft -= part.length;
            buf = buf.subarray(part.length);
          }
          if (chunkLeft === 0) {
            if (buf.length < 2) return;
            buf = buf.subarray(2);
            chunkLeft = -1;
          }
        }
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
