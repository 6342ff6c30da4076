// Connect, gRPC-web (and gRPC with codecs the fast path lacks, e.g. grpc+json) through connect-node's adapter,
// serving the same method table as the gRPC fast path. Implementations are wrapped so that errors which are not
// ConnectErrors (the server's RpcError: `code` + etcd message) keep their code instead of becoming Unknown.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { H2ServerRequest, H2ServerResponse } from "./h2/compat.ts";
import type { H1ServerRequest, H1ServerResponse } from "./h1/connection.ts";
import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext, MethodImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { toConnectError } from "./rpc_status.ts";
import type { MethodCall, MethodTable } from "./services.ts";

type Req = H1ServerRequest | H2ServerRequest;
type Res = H1ServerResponse | H2ServerResponse;
type Handler = (req: Req, res: Res) => void;

export function createConnectHandler(table: MethodTable, maxRecvBytes: number, fallback: Handler): Handler {
  const fullDuplex = adapter(table, maxRecvBytes, fallback, false);
  const halfDuplex = adapter(table, maxRecvBytes, fallback, true);
  // the H1 and H2 request/response objects implement what the adapter reads of node's (rpc/h1, rpc/h2/compat.ts)
  return (req, res) =>
    (req.httpVersion === "2.0" ? fullDuplex : halfDuplex)(
      req as unknown as IncomingMessage,
      res as unknown as ServerResponse,
    );
}

/**
 * HTTP/1.1 cannot carry a bidirectional stream (connect-node answers 505), and browsers cannot stream a request body
 * at all: there, bidi methods (Watch, LeaseKeepAlive) are served as server-streaming calls that take one request, as
 * etcd's JSON gateway serves them.
 */
function adapter(table: MethodTable, maxRecvBytes: number, fallback: Handler, halfDuplex: boolean) {
  return connectNodeAdapter({
    readMaxBytes: maxRecvBytes,
    fallback: (req, res) => fallback(req as unknown as Req, res as unknown as Res),
    routes(router: ConnectRouter) {
      for (const entry of table.values()) {
        if (halfDuplex && entry.call.kind === "bidi_streaming") {
          const method = { ...entry.method, methodKind: "server_streaming" } as DescMethod;
          router.rpc(method, wrap(oneRequest(entry.call.fn)) as MethodImpl<DescMethod>);
        } else {
          router.rpc(entry.method, wrap(entry.call) as MethodImpl<DescMethod>);
        }
      }
    },
  });
}

type BidiFn = Extract<MethodCall, { kind: "bidi_streaming" }>["fn"];

function oneRequest(fn: BidiFn): MethodCall {
  return {
    kind: "server_streaming",
    fn: (req, ctx) =>
      fn(
        (async function* () {
          yield req;
        })(),
        ctx,
      ),
  };
}

function wrap(call: MethodCall): MethodCall["fn"] {
  switch (call.kind) {
    case "unary":
    case "client_streaming": {
      const fn = call.fn as (req: unknown, ctx: HandlerContext) => unknown;
      return (async (req: unknown, ctx: HandlerContext) => {
        try {
          return await fn(req, ctx);
        } catch (e) {
          throw toConnectError(e);
        }
      }) as MethodCall["fn"];
    }
    case "server_streaming":
    case "bidi_streaming": {
      const fn = call.fn as (req: unknown, ctx: HandlerContext) => AsyncIterable<unknown>;
      return async function* (req: unknown, ctx: HandlerContext) {
        try {
          yield* fn(req, ctx);
        } catch (e) {
          throw toConnectError(e);
        }
      } as MethodCall["fn"];
    }
  }
}
