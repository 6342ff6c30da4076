// Binding a --listen-client-urls URL, apart from serving it (listener.ts): etcd binds every listener before it starts
// the server, so that a port in use fails the start before the data dir is touched, and connections that arrive
// before the server is ready are held, not refused. This module is light on purpose: a member binds its client URLs
// before it loads the rest of itself (~0.1 s), so a client that dials a starting member waits instead of being refused.
import net from "node:net";
import type { ClientUrlOptions, ClientUrlServer } from "./listener.ts";

/** A client URL bound and not yet served: connections that arrive are held (not refused) until serve(). */
export interface ClientUrlListener {
  readonly url: URL;
  readonly port: number;
  serve(opts: ClientUrlOptions): Promise<ClientUrlServer>;
  close(): Promise<void>;
}

/**
 * Binds url (etcd binds every listener before it starts the server, so that a port in use fails the start before
 * the data dir is touched); serve() then takes the held connections and the ones to come.
 */
export function listenClientUrl(url: URL): Promise<ClientUrlListener> {
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
  let accept: ((socket: net.Socket) => void) | undefined;
  const held: net.Socket[] = [];
  const server = net.createServer((socket) => {
    if (accept !== undefined) return accept(socket);
    socket.on("error", () => {});
    held.push(socket);
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
        serve: async (opts) => {
          // the serving code loads only now: connections keep being held meanwhile
          const { serveOn } = await import("./listener.ts");
          const s = serveOn(server, actual, bound, opts);
          accept = s.accept;
          for (const socket of held.splice(0)) accept(socket);
          return s.server;
        },
        close: () => {
          for (const socket of held.splice(0)) socket.destroy();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}
