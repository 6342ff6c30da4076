// The plain HTTP endpoints beside the API on client and metrics URLs: /health,
// /version and /metrics, answered like etcd 3.4's etcdhttp handlers.
import type { PlainHttpHandler, PlainHttpResponse } from "../rpc/http_routes.ts";
import type { EtcdServer } from "./etcdserver.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { ETCD_SERVER_VERSION } from "./version.ts";

const json = { "content-type": "application/json" };
const textPlain = { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" };

function onlyGet(method: string): PlainHttpResponse | undefined {
  if (method === "GET" || method === "HEAD") return undefined;
  return { status: 405, headers: { allow: "GET", "content-type": "text/plain" }, body: "Method Not Allowed" };
}

export function httpEndpoints(s: EtcdServer, registry: MetricsRegistry): Map<string, PlainHttpHandler> {
  return new Map<string, PlainHttpHandler>([
    ["/health", async (req) => {
      const bad = onlyGet(req.method);
      if (bad !== undefined) return bad;
      const ok = await s.checkHealth(1000, new Set(req.query.getAll("exclude")));
      const body = JSON.stringify({ health: ok ? "true" : "false" });
      // etcd answers an unhealthy check through http.Error: text/plain, a trailing newline
      if (!ok) return { status: 503, headers: textPlain, body: body + "\n" };
      return { status: 200, headers: json, body };
    }],
    ["/version", (req) =>
      onlyGet(req.method) ?? {
        status: 200,
        headers: json,
        body: JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: s.cluster.version || "not_decided" }),
      }],
    ["/metrics", (req) => {
      const bad = onlyGet(req.method);
      if (bad !== undefined) return bad;
      // sizes are read when scraped rather than kept current on the write path
      s.metrics.dbTotalSize.set(s.backend.dbSize());
      s.metrics.dbTotalSizeInUse.set(s.backend.dbSizeInUse());
      s.metrics.keysTotal.set(s.store.index.size);
      const w = s.watchable.counts;
      s.metrics.watchStreamTotal.set(w.streams);
      s.metrics.watcherTotal.set(w.synced + w.unsynced + w.victims);
      s.metrics.slowWatcherTotal.set(w.unsynced + w.victims);
      return {
        status: 200,
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        body: registry.render(),
      };
    }],
  ]);
}
