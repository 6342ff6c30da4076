// One --listen-client-urls URL: a TCP listener whose connections are sniffed - the HTTP/2 client preface goes to
// an HTTP/2 server (gRPC fast path + compatibility API for everything else), anything else to an HTTP/1.1 server.

import { Buffer } from "node:buffer";
import http from "node:http";
import http2, { type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import net from "node:net";
import { createGrpcHandler, isGrpcContentType } from "./grpc_handler.ts";
import { createHttpRoutes, type PlainHttpHandler } from "./http_routes.ts";
import type { RpcLogger } from "./logger.ts";
import { buildMethodTable, type ServiceRegistry } from "./services.ts";

export interface ClientUrlOptions {
  readonly services: ServiceRegistry;
  // Largest request message (etcd: --max-request-bytes + 512 KiB, grpc's MaxRecvMsgSize).
  readonly maxRecvBytes: number;
  // etcd --cors: allowed browser origins, "*" for any; empty: no CORS headers.
  readonly corsOrigins?: readonly string[];
  // Plain endpoints by exact path, e.g. /health, /version, /metrics.
  readonly httpHandlers?: ReadonlyMap<string, PlainHttpHandler>;
  readonly logger?: RpcLogger;
  // How long close() lets in-flight requests finish before cutting connections.
  readonly closeTimeoutMs?: number;
}

export interface ClientUrlServer {
  // The URL actually bound (port 0 resolved).
  readonly url: URL;
  readonly port: number;
  close(): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export function serveClientUrl(url: URL, opts: ClientUrlOptions): Promise<ClientUrlServer> {
  if (url.protocol === "unix:" || url.protocol === "unixs:") {
    return Promise.reject(new Error(`rpc: ${url.href}: unix socket client URLs are not supported yet`));
  }
  if (url.protocol === "https:") {
    return Promise.reject(new Error(`rpc: ${url.href}: TLS client URLs are not supported yet`));
  }
  if (url.protocol !== "http:") {
    return Promise.reject(new Error(`rpc: ${url.href}: unsupported client URL scheme ${url.protocol}`));
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? 80 : Number(url.port);

  const table = buildMethodTable(opts.services);
  const routes = createHttpRoutes({
    table,
    maxRecvBytes: opts.maxRecvBytes,
    corsOrigins: opts.corsOrigins ?? [],
    httpHandlers: opts.httpHandlers ?? new Map(),
    logger: opts.logger,
  });
  const grpc = createGrpcHandler(table, { maxRecvBytes: opts.maxRecvBytes });

  // Only a 'stream' listener on the real HTTP/2 server, so gRPC streams skip the compatibility layer; the rest
  // are handed to a never-listening server whose 'request' listener installs node's compatibility API.
  const compat = http2.createServer(routes);
  const h2 = http2.createServer({ maxSessionMemory: 64 });
  h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (isGrpcContentType(headers["content-type"])) grpc(stream, headers);
    else compat.emit("stream", stream, headers, flags, rawHeaders);
  });
  const h1 = http.createServer(routes);

  const sockets = new Set<net.Socket>();
  const h2Sockets = new WeakSet<net.Socket>();
  const sessions = new Set<Http2Session>();
  h2.on("session", (s: Http2Session) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    s.on("error", (e) => opts.logger?.warn("rpc: http2 session error", { url: url.href, error: String(e) }));
  });
  // HTTP/1.1 sockets with a request in flight; idle ones are closed at once on shutdown.
  const busy = new Map<net.Socket, number>();
  let closing = false;
  h1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const s = req.socket;
    busy.set(s, (busy.get(s) ?? 0) + 1);
    res.once("close", () => {
      const n = (busy.get(s) ?? 1) - 1;
      if (n > 0) busy.set(s, n);
      else {
        busy.delete(s);
        if (closing) s.destroy();
      }
    });
    if (closing) res.shouldKeepAlive = false;
  });

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {}); // peer resets are routine; the protocol servers see their own errors
    sniff(socket, (isH2) => {
      if (isH2) h2Sockets.add(socket);
      (isH2 ? h2 : h1).emit("connection", socket);
    });
  });

  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      reject(new Error(`rpc: cannot listen on client URL ${url.href}: ${e.code ?? e.message}`));
    });
    server.listen(port, host, () => {
      const bound = (server.address() as net.AddressInfo).port;
      const actual = new URL(url.href);
      actual.port = String(bound);
      resolve({
        url: actual,
        port: bound,
        close: () => {
          closing = true;
          return shutdown(
            server,
            sockets,
            (s) => h2Sockets.has(s) || busy.has(s),
            sessions,
            opts.closeTimeoutMs ?? 5000,
          );
        },
      });
    });
  });
}

// Reads just enough of the connection to tell the HTTP/2 preface from anything else, then puts it back.
function sniff(socket: net.Socket, route: (isH2: boolean) => void) {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isPrefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isPrefix && n < PREFACE.length) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    route(isPrefix);
    socket.resume();
  };
  socket.on("data", onData);
}

async function shutdown(
  server: net.Server,
  sockets: Set<net.Socket>,
  inUse: (s: net.Socket) => boolean,
  sessions: Set<Http2Session>,
  timeoutMs: number,
): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  // GOAWAY lets HTTP/2 streams in flight finish; idle HTTP/1.1 and unsniffed sockets go now.
  for (const s of sessions) s.close();
  for (const s of sockets) if (!inUse(s)) s.destroy();
  const drained = new Promise<void>((resolve) => {
    const check = () => (sockets.size === 0 ? resolve() : setTimeout(check, 10));
    check();
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([drained, timeout]);
  clearTimeout(timer);
  for (const s of sockets) s.destroy();
  await stopped;
}
