// CORS for browsers on the client port (etcd --cors): Connect, gRPC-web and the JSON gateway. Origins are exact
// matches, "*" allows any.

import type { H2ServerRequest, H2ServerResponse } from "./h2/compat.ts";
import type { H1ServerRequest, H1ServerResponse } from "./h1/connection.ts";

const ALLOW_METHODS = "POST, GET, OPTIONS, PUT, DELETE";
const ALLOW_HEADERS = [
  "accept",
  "authorization",
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "grpc-timeout",
  "x-grpc-web",
  "x-user-agent",
].join(", ");
const EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin";

export type Cors = (req: H1ServerRequest | H2ServerRequest, res: H1ServerResponse | H2ServerResponse) => boolean;

// Returns a function that adds CORS headers and answers preflights itself (returning true when it did).
export function createCors(origins: readonly string[]): Cors {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    const ok = any || allowed.has(origin);
    if (ok) {
      res.setHeader("access-control-allow-origin", any ? "*" : origin);
      if (!any) res.setHeader("vary", "Origin");
    }
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      if (ok) {
        res.setHeader("access-control-allow-methods", ALLOW_METHODS);
        res.setHeader("access-control-allow-headers", ALLOW_HEADERS);
        res.setHeader("access-control-max-age", "7200");
      }
      res.writeHead(204);
      res.end();
      return true;
    }
    if (ok) res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
    return false;
  };
}
