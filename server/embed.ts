// The embed-style Etcd object (etcd's embed.Etcd): peer, client and metrics listeners
// around one EtcdServer. startEtcd() brings a member up from its config and resolves
// once it serves clients; close() takes it down in the reverse order.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { EtcdConfig } from "./config.ts";
import { identifyDataDir } from "./data_dir.ts";
import type { EtcdServer } from "./etcdserver.ts";
import type { PlainHttpHandler } from "../rpc/http_routes.ts";
import type { Logger } from "./logger.ts";
import type { ClientUrlServer } from "../rpc/listener.ts";
import { type ClientUrlListener, listenClientUrl } from "../rpc/client_listen.ts";
import { urlString } from "./urls.ts";
import { listenPeerUrl, type PeerListener } from "./peer/listener.ts";
import { type PeerRequest, type PeerResponse, plainError } from "./peer/http.ts";

// Only what binds the listeners is imported up front: the server itself (most of detcd) loads once they are bound,
// so that a client dialing a member that is starting is held rather than refused for that ~0.1 s.

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

/** `abort` (a signal during startup) stops the server before it is ready: startEtcd then throws, everything closed. */
export async function startEtcd(cfg: EtcdConfig, logger: Logger, abort?: AbortSignal): Promise<Etcd> {
  const kind = identifyDataDir(cfg.dataDir);
  if (kind === "proxy") throw new Error(`data dir ${cfg.dataDir} holds a v2 proxy, which detcd does not support`);
  if (kind === "member") {
    logger.info("the server is already initialized as member before, starting as etcd member...", {
      "data-dir": cfg.dataDir,
    });
  }
  // Every listener is bound before the server is created, as etcd's embed does: a port in use fails the start
  // before the data dir is touched. The handlers reach the server through `box` once it exists; client connections
  // that arrive meanwhile wait, unrefused, until the server is ready, and peer requests until it exists.
  let created: (server: EtcdServer | undefined) => void = () => {};
  const box: Box = { serverCreated: new Promise((resolve) => created = resolve) };
  const peers: PeerListener[] = [], metricsListeners: Server[] = [], clients: ClientUrlListener[] = [];
  const closeListeners = () =>
    Promise.all([...clients.map((c) => c.close()), ...peers.map((p) => p.close()), ...metricsListeners.map(closeHttp)]);
  let server: EtcdServer;
  let loaded: Awaited<ReturnType<typeof loadServer>>;
  let registry: InstanceType<typeof loaded.metrics.MetricsRegistry>;
  try {
    for (const url of cfg.listenPeerUrls) {
      peers.push(await listenPeerUrl(url, peerHandler(box)));
      logger.info("starting peer listener", { address: urlString(url) });
    }
    for (const url of cfg.listenClientUrls) {
      if (url.protocol === "http:" && cfg.certFile !== "") {
        logger.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", {
          "client-url": urlString(url),
        });
      }
      clients.push(await listenClientUrl(url, { certFile: cfg.certFile, keyFile: cfg.keyFile }));
    }
    for (const url of cfg.listenMetricsUrls) {
      metricsListeners.push(await listenMetrics(url, endpointHandler(() => box.endpoints), cfg));
      logger.info("serving metrics", { address: urlString(url) });
    }
    loaded = await loadServer();
    registry = new loaded.metrics.MetricsRegistry();
    server = await loaded.EtcdServer.create(
      cfg,
      logger.child("etcdserver"),
      new loaded.metrics.ServerMetrics(registry),
    );
  } catch (err) {
    created(undefined);
    await closeListeners().catch(() => {});
    throw err;
  }
  box.server = server;
  created(server);
  const endpoints = box.endpoints = loaded.httpEndpoints(server, registry);
  const e = new Etcd(server, logger);
  e.peers.push(...peers);
  e.metricsListeners.push(...metricsListeners);
  const stopEarly = () => void server.stop();
  try {
    if (abort?.aborted) throw new Error("etcd server stopped before it was ready");
    abort?.addEventListener("abort", stopEarly, { once: true });
    server.start();
    const readyOrStopped = await Promise.race([server.ready.then(() => true), server.stopped.then(() => false)]);
    abort?.removeEventListener("abort", stopEarly);
    if (!readyOrStopped) throw new Error("etcd server stopped before it was ready");
    // after the membership is applied, before any client is served
    if (cfg.initialCorruptCheck) await server.checkInitialHashKV();
    const services = loaded.etcdServices(server);
    const grpcObserver = loaded.metrics.grpcMetricsObserver(server.metrics);
    for (const [i, listener] of clients.entries()) {
      e.clients.push(
        await listener.serve({
          services,
          maxRecvBytes: cfg.maxRequestBytes + grpcOverheadBytes,
          corsOrigins: cfg.cors,
          httpHandlers: endpoints,
          logger: logger.child("embed"),
          grpcObserver,
        }),
      );
      const url = cfg.listenClientUrls[i];
      if (url.protocol === "https:") logger.info("serving client traffic securely", { address: url.host });
      else logger.info("serving client traffic insecurely; this is strongly discouraged!", { address: url.host });
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

/** A metrics URL: plain HTTP, or HTTPS with the client URLs' certificate (--cert-file, --key-file), as etcd serves it. */
async function listenMetrics(
  url: URL,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  cfg: EtcdConfig,
): Promise<Server> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`metrics URL ${url.href}: only http:// and https:// are supported (no unix sockets)`);
  }
  let srv: Server;
  if (url.protocol === "https:") {
    const { createServer: createHttpsServer } = await import("node:https");
    let cert: string, key: string;
    try {
      [cert, key] = await Promise.all([Deno.readTextFile(cfg.certFile), Deno.readTextFile(cfg.keyFile)]);
    } catch (err) {
      throw new Error(`metrics URL ${url.href}: cannot load TLS key/cert: ${(err as Error).message}`);
    }
    srv = createHttpsServer({ cert, key }, handler) as unknown as Server;
  } else {
    srv = createServer(handler);
  }
  return await new Promise<Server>((resolve, reject) => {
    srv.once("error", (err) => reject(new Error(`listen metrics URL ${url.href}: ${err.message}`)));
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

interface Box {
  server?: EtcdServer;
  endpoints?: Map<string, PlainHttpHandler>;
  /** Settles once the server exists, or with undefined when it could not be created. */
  serverCreated: Promise<EtcdServer | undefined>;
}

/**
 * The peer port: the server's once it exists (etcdserver.ts servePeer). What comes before waits for it, as etcd's
 * peer listener holds the connections it does not serve yet: a stream a peer dials meanwhile works at once (a 503
 * would have it dial again 100 ms later, and what the peer sends meanwhile take the pipeline, answered 503 too).
 */
function peerHandler(box: Box) {
  return (req: PeerRequest, res: PeerResponse) => {
    if (box.server !== undefined) return box.server.servePeer(req, res);
    void box.serverCreated.then((server) => {
      if (server !== undefined) server.servePeer(req, res);
      else plainError(res, 503, "etcd server failed to start");
    });
  };
}

/** The server and what serves it, loaded after the listeners are bound. */
async function loadServer() {
  const [{ EtcdServer }, { etcdServices }, { httpEndpoints }, metrics] = await Promise.all([
    import("./etcdserver.ts"),
    import("./services.ts"),
    import("./http_endpoints.ts"),
    import("./metrics.ts"),
  ]);
  return { EtcdServer, etcdServices, httpEndpoints, metrics };
}
