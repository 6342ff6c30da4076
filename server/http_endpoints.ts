// The plain HTTP endpoints beside the API on client and metrics URLs: /health,
// /version and /metrics, answered like etcd 3.4's etcdhttp handlers.
import type { EtcdServer } from "./etcdserver.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { ETCD_SERVER_VERSION } from "./version.ts";

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type HttpEndpoint = (method: string) => Promise<HttpAnswer> | HttpAnswer;

const json = { "content-type": "application/json" };

function onlyGet(method: string): HttpAnswer | undefined {
  if (method === "GET" || method === "HEAD") return undefined;
  return { status: 405, headers: { allow: "GET", ...json }, body: "Method Not Allowed" };
}

export function httpEndpoints(s: EtcdServer, registry: MetricsRegistry): Map<string, HttpEndpoint> {
  return new Map<string, HttpEndpoint>([
    ["/health", async (method) => {
      const bad = onlyGet(method);
      if (bad !== undefined) return bad;
      const ok = await s.checkHealth(1000);
      s.metrics[ok ? "healthSuccess" : "healthFailures"].inc();
      return { status: ok ? 200 : 503, headers: json, body: JSON.stringify({ health: ok ? "true" : "false" }) };
    }],
    ["/version", (method) => {
      return onlyGet(method) ?? {
        status: 200,
        headers: json,
        body: JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: s.cluster.version || "not_decided" }),
      };
    }],
    ["/metrics", (method) => {
      return onlyGet(method) ??
        {
          status: 200,
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
          body: registry.render(),
        };
    }],
  ]);
}
