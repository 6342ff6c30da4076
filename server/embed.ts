// The embed-style Etcd object (etcd's embed.Etcd): peer, client and metrics listeners
// around one EtcdServer. startEtcd() brings a member up from its config and resolves
// once it serves clients; close() takes it down in the reverse order.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { EtcdConfig } from "./config.ts";
import { identifyDataDir } from "./data_dir.ts";
import { EtcdServer } from "./etcdserver.ts";
import { httpEndpoints } from "./http_endpoints.ts";
import type { PlainHttpHandler } from "../rpc/http_routes.ts";
import type { Logger } from "./logger.ts";
import { grpcMetricsObserver, MetricsRegistry, ServerMetrics } from "./metrics.ts";
import { etcdServices } from "./services.ts";
import { type ClientUrlListener, type ClientUrlServer, listenClientUrl } from "../rpc/listener.ts";
import { ETCD_SERVER_VERSION } from "./version.ts";
import { urlString } from "./urls.ts";
import { probingHandler, RAFT_PREFIX, RAFT_PROBING_PREFIX, RAFT_SNAPSHOT_PREFIX } from "./peer/transport.ts";
import { MEMBER_PROMOTE_PREFIX, MEMBERS_PREFIX } from "./peer/members_http.ts";
import { STREAM_PREFIX } from "./peer/stream.ts";
import { listenPeerUrl, type PeerListener } from "./peer/listener.ts";
import { PEER_HASHKV_PATH } from "./corrupt.ts";
import type { PeerRequest, PeerResponse } from "./peer/http.ts";
import { LEASE_INTERNAL_PREFIX, LEASE_PREFIX } from "./lease/lease_http.ts";

/** etcd's grpcOverheadBytes: a gRPC message may exceed --max-request-bytes by this much before the transport refuses it. */
const grpcOverheadBytes = 512 * 1024;

export class Etcd {
  readonly clients: ClientUrlServer[] = [];
  readonly peers: PeerListener[] = [];
  readonly metricsListeners: Server[] = [];
  private closing: Promise<void> | undefined;

  constructor(readonly server: EtcdServer, private readonly logger: Logger) {}

  /** Settles when the server stops on its own (a fatal error) or through close(). */
  get closed(): Promise<void> {
    return this.server.stopped;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.logger.info("closing etcd server", { name: this.server.cfg.name });
    // stop taking requests, let in-flight ones finish, then stop the server (a leader hands over first, which
    // needs the peers), then the peer and metrics listeners
    await Promise.all(this.clients.map((c) => c.close()));
    await this.server.stop();
    await Promise.all([...this.peers.map((p) => p.close()), ...this.metricsListeners.map(closeHttp)]);
    this.logger.info("closed etcd server", { name: this.server.cfg.name });
  }
}

export async function startEtcd(cfg: EtcdConfig, logger: Logger): Promise<Etcd> {
  const kind = identifyDataDir(cfg.dataDir);
  if (kind === "proxy") throw new Error(`data dir ${cfg.dataDir} holds a v2 proxy, which detcd does not support`);
  if (kind === "member") {
    logger.info("the server is already initialized as member before, starting as etcd member...", {
      "data-dir": cfg.dataDir,
    });
  }
  // Every listener is bound before the server is created, as etcd's embed does: a port in use fails the start
  // before the data dir is touched. The handlers reach the server through `box` once it exists; client connections
  // that arrive meanwhile wait, unrefused, until the server is ready.
  const registry = new MetricsRegistry();
  const box: { server?: EtcdServer; endpoints?: Map<string, PlainHttpHandler> } = {};
  const peers: PeerListener[] = [], metricsListeners: Server[] = [], clients: ClientUrlListener[] = [];
  const closeListeners = () =>
    Promise.all([...clients.map((c) => c.close()), ...peers.map((p) => p.close()), ...metricsListeners.map(closeHttp)]);
  let server: EtcdServer;
  try {
    for (const url of cfg.listenPeerUrls) {
      peers.push(await listenPeerUrl(url, peerHandler(box)));
      logger.info("starting peer listener", { address: urlString(url) });
    }
    for (const url of cfg.listenClientUrls) clients.push(await listenClientUrl(url));
    for (const url of cfg.listenMetricsUrls) {
      metricsListeners.push(await listenHttp(url, endpointHandler(() => box.endpoints), "metrics"));
      logger.info("serving metrics", { address: urlString(url) });
    }
    server = await EtcdServer.create(cfg, logger.child("etcdserver"), new ServerMetrics(registry));
  } catch (err) {
    await closeListeners().catch(() => {});
    throw err;
  }
  box.server = server;
  const endpoints = box.endpoints = httpEndpoints(server, registry);
  const e = new Etcd(server, logger);
  e.peers.push(...peers);
  e.metricsListeners.push(...metricsListeners);
  try {
    server.start();
    const readyOrStopped = await Promise.race([server.ready.then(() => true), server.stopped.then(() => false)]);
    if (!readyOrStopped) throw new Error("etcd server stopped before it was ready");
    // after the membership is applied, before any client is served
    if (cfg.initialCorruptCheck) await server.checkInitialHashKV();
    const services = etcdServices(server);
    const grpcObserver = grpcMetricsObserver(server.metrics);
    for (const [i, listener] of clients.entries()) {
      e.clients.push(listener.serve({
        services,
        maxRecvBytes: cfg.maxRequestBytes + grpcOverheadBytes,
        corsOrigins: cfg.cors,
        httpHandlers: endpoints,
        logger: logger.child("embed"),
        grpcObserver,
      }));
      logger.info("serving client traffic insecurely; this is strongly discouraged!", {
        address: cfg.listenClientUrls[i].host,
      });
    }
    logger.info("ready to serve client requests", {});
    return e;
  } catch (err) {
    // client listeners not yet served are closed here; served ones by e.close()
    await Promise.all(clients.slice(e.clients.length).map((c) => c.close())).catch(() => {});
    await e.close().catch(() => {});
    throw err;
  }
}

function listenHttp(url: URL, handler: (req: IncomingMessage, res: ServerResponse) => void, what: string) {
  if (url.protocol !== "http:") {
    return Promise.reject(
      new Error(`${what} URL ${url.href}: only http:// is supported yet (no TLS, no unix sockets)`),
    );
  }
  return new Promise<Server>((resolve, reject) => {
    const srv = createServer(handler);
    srv.once("error", (err) => reject(new Error(`listen ${what} URL ${url.href}: ${err.message}`)));
    srv.listen(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ""), () => resolve(srv));
  });
}

function closeHttp(srv: Server): Promise<void> {
  return new Promise((resolve) => {
    srv.close(() => resolve());
    srv.closeAllConnections();
  });
}

/** The metrics URLs serve only the plain endpoints (etcd's --listen-metrics-urls); none until the server exists. */
function endpointHandler(endpoints: () => Map<string, PlainHttpHandler> | undefined) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://metrics");
    const ep = endpoints()?.get(url.pathname);
    if (ep === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found\n");
      return;
    }
    const a = await ep({
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
    });
    res.writeHead(a.status, a.headers).end(a.body);
  };
}

/** The peer port: raft messages from the other members, and members and versions for tooling. */
function peerHandler(box: { server?: EtcdServer }) {
  return (req: PeerRequest, res: PeerResponse) => {
    const server = box.server;
    if (server === undefined) {
      res.writeHead(503, { "content-type": "text/plain" }).end("etcd server is starting\n");
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    if (path === RAFT_PREFIX) return server.peerPipeline(req, res);
    if (path === RAFT_SNAPSHOT_PREFIX) return server.peerSnapshot(req, res);
    if (path.startsWith(`${STREAM_PREFIX}/`)) return server.peerStream(req, res);
    if (path === LEASE_PREFIX || path === LEASE_INTERNAL_PREFIX) return server.leaseHttp(req, res);
    if (path === PEER_HASHKV_PATH) return server.peerHashKV(req, res);
    if (path === MEMBERS_PREFIX || path.startsWith(MEMBER_PROMOTE_PREFIX)) return server.peerMembers(req, res);
    if (path === RAFT_PROBING_PREFIX) return probingHandler(req, res);
    if (path === "/version") {
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: server.cluster.version || "not_decided" }),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found\n");
    }
  };
}
