// Request routing for everything on the client port that is not gRPC-over-HTTP/2-proto (the fast path):
// HTTP/1.1 requests (rpc/h1) and HTTP/2 requests via rpc/h2/compat.ts. Order: CORS (preflights answered here),
// the server's plain endpoints (/health, /version, /metrics), the JSON gateway (/v3/...), then Connect/gRPC-web.

import type { H2ServerRequest, H2ServerResponse } from "./h2/compat.ts";
import type { H1ServerRequest, H1ServerResponse } from "./h1/connection.ts";
import { createCors } from "./cors.ts";
import { createGatewayHandler, GATEWAY_PREFIX, sendError } from "./gateway.ts";
import type { RpcLogger } from "./logger.ts";
import type { MethodTable } from "./services.ts";
import { GrpcCode } from "./status_codes.ts";

export interface PlainHttpRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface PlainHttpResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

export type PlainHttpHandler = (req: PlainHttpRequest) => PlainHttpResponse | Promise<PlainHttpResponse>;

export interface HttpRoutesOptions {
  readonly table: MethodTable;
  readonly maxRecvBytes: number;
  readonly corsOrigins: readonly string[];
  readonly httpHandlers: ReadonlyMap<string, PlainHttpHandler>;
  readonly logger?: RpcLogger;
}

type Req = H1ServerRequest | H2ServerRequest;
type Res = H1ServerResponse | H2ServerResponse;

export function createHttpRoutes(opts: HttpRoutesOptions): (req: Req, res: Res) => void {
  const cors = opts.corsOrigins.length > 0 ? createCors(opts.corsOrigins) : undefined;
  const gateway = createGatewayHandler(opts.table, opts.maxRecvBytes);
  const notFound = (_req: Req, res: Res) => sendError(res, { code: GrpcCode.NotFound, message: "Not Found" }, 404);
  // connect-node is loaded by the first Connect or gRPC-web request, not by every start (~12 ms of it); the request's
  // body waits in its stream meanwhile
  let connect: Promise<(req: Req, res: Res) => void> | undefined;
  const connectHandler = () =>
    connect ??= import("./connect_routes.ts").then((m) =>
      m.createConnectHandler(opts.table, opts.maxRecvBytes, notFound)
    );
  return (req, res) => {
    if (cors?.(req, res)) return;
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    // etcd 3.4 still answers its beta gateway paths: /v3beta/... is rewritten to /v3/... before routing
    const path = aliasV3beta(q < 0 ? url : url.slice(0, q));
    const plain = opts.httpHandlers.get(path);
    if (plain) return servePlain(plain, req, res, path, q < 0 ? "" : url.slice(q + 1), opts.logger);
    if (path.startsWith(GATEWAY_PREFIX)) return gateway(req, res, path);
    connectHandler().then((h) => h(req, res));
  };
}

function aliasV3beta(path: string): string {
  return path.startsWith("/v3beta/") ? "/v3/" + path.slice("/v3beta/".length) : path;
}

async function servePlain(h: PlainHttpHandler, req: Req, res: Res, path: string, query: string, log?: RpcLogger) {
  try {
    const r = await h({ method: req.method ?? "GET", path, query: new URLSearchParams(query), headers: req.headers });
    res.writeHead(r.status, r.headers);
    res.end(r.body ?? "");
  } catch (e) {
    log?.warn("rpc: http handler failed", { path, error: String(e) });
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error\n");
  }
}
