// One --listen-client-urls URL: a TCP listener (TLS on https://, see client_listen.ts) whose connections are sniffed -
// the HTTP/2 client preface goes to our HTTP/2 server (rpc/h2: gRPC fast path, node-style request/response objects for
// everything else), anything else to our HTTP/1.1 server (rpc/h1). Nothing listens but the configured URL.

import { Buffer } from "node:buffer";
import net from "node:net";
import { createGrpcHandler, type GrpcObserver, isGrpcContentType } from "./grpc_handler.ts";
import { H2ServerRequest } from "./h2/compat.ts";
import { H2Connection } from "./h2/connection.ts";
import { H1Connection } from "./h1/connection.ts";
import { PREFACE } from "./h2/frames.ts";
import type { H2Stream } from "./h2/stream.ts";
import { createHttpRoutes, type PlainHttpHandler } from "./http_routes.ts";
import type { RpcLogger } from "./logger.ts";
import { buildMethodTable, type ServiceRegistry } from "./services.ts";
import { listenClientUrl } from "./client_listen.ts";

export interface ClientUrlOptions {
  readonly services: ServiceRegistry;
  // Largest request message (etcd: --max-request-bytes + 512 KiB, grpc's MaxRecvMsgSize).
  readonly maxRecvBytes: number;
  // etcd --cors: allowed browser origins, "*" for any; empty: no CORS headers.
  readonly corsOrigins?: readonly string[];
  // Plain endpoints by exact path, e.g. /health, /version, /metrics.
  readonly httpHandlers?: ReadonlyMap<string, PlainHttpHandler>;
  readonly logger?: RpcLogger;
  // Counts the gRPC calls and their bytes (the server's metrics).
  readonly grpcObserver?: GrpcObserver;
  // How long close() lets in-flight requests finish before cutting connections.
  readonly closeTimeoutMs?: number;
}

export interface ClientUrlServer {
  // The URL actually bound (port 0 resolved).
  readonly url: URL;
  readonly port: number;
  close(): Promise<void>;
}

export async function serveClientUrl(url: URL, opts: ClientUrlOptions): Promise<ClientUrlServer> {
  return await (await listenClientUrl(url)).serve(opts);
}

/** Serves the connections of a bound listener: what each accepted socket goes to, and how it all closes. */
export function serveOn(
  server: net.Server,
  url: URL,
  port: number,
  opts: ClientUrlOptions,
): { accept: (socket: net.Socket) => void; server: ClientUrlServer } {
  const table = buildMethodTable(opts.services);
  const routes = createHttpRoutes({
    table,
    maxRecvBytes: opts.maxRecvBytes,
    corsOrigins: opts.corsOrigins ?? [],
    httpHandlers: opts.httpHandlers ?? new Map(),
    logger: opts.logger,
  });
  const grpc = createGrpcHandler(table, { maxRecvBytes: opts.maxRecvBytes, observer: opts.grpcObserver });

  const sockets = new Set<net.Socket>();
  const connections = new Map<net.Socket, H2Connection>();
  const h1Connections = new Map<net.Socket, H1Connection>();
  let closing = false;
  const startH2 = (socket: net.Socket, seen: Uint8Array) => {
    const onStream = (stream: H2Stream) => {
      if (isGrpcContentType(stream.headers["content-type"])) return grpc(stream);
      const req = new H2ServerRequest(stream, socket);
      routes(req, req.response);
    };
    const conn = new H2Connection(socket, { onStream, onClose: () => connections.delete(socket) }, seen);
    connections.set(socket, conn);
    if (closing) conn.close();
  };
  const startH1 = (socket: net.Socket, seen: Buffer) => {
    const conn = new H1Connection(socket, seen, routes);
    h1Connections.set(socket, conn);
    socket.once("close", () => h1Connections.delete(socket));
    if (closing) conn.close();
  };

  const accept = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {}); // peer resets are routine; the protocol servers see their own errors
    sniff(socket, (isH2, seen) => {
      if (isH2) return startH2(socket, seen);
      startH1(socket, seen);
    });
  };

  return {
    accept,
    server: {
      url,
      port,
      close: async () => {
        closing = true;
        await shutdown(server, sockets, connections, h1Connections, opts.closeTimeoutMs ?? 5000);
      },
    },
  };
}

// Reads just enough of the connection to tell the HTTP/2 preface from anything else; hands over what it read.
function sniff(socket: net.Socket, route: (isH2: boolean, seen: Buffer) => void) {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isPrefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isPrefix && n < PREFACE.length) return;
    socket.off("data", onData);
    route(isPrefix, seen);
  };
  socket.on("data", onData);
}

async function shutdown(
  server: net.Server,
  sockets: Set<net.Socket>,
  h2: Map<net.Socket, H2Connection>,
  h1: Map<net.Socket, H1Connection>,
  timeoutMs: number,
): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  // GOAWAY lets HTTP/2 streams in flight finish, an HTTP/1.1 response in flight ends its connection after it;
  // idle connections and unsniffed sockets go now.
  for (const c of h2.values()) c.close();
  for (const c of h1.values()) c.close();
  for (const s of sockets) if (!h1.has(s) && !h2.has(s)) s.destroy();
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
