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

/** The certificate and key files an https:// URL serves (etcd's --cert-file, --key-file). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * Binds url (etcd binds every listener before it starts the server, so that a port in use fails the start before
 * the data dir is touched); serve() then takes the held connections and the ones to come. An https:// URL serves TLS
 * with `tls`'s certificate, HTTP/2 or HTTP/1.1 as the client's ALPN asks: its connections are handed on decrypted.
 */
export async function listenClientUrl(url: URL, tlsFiles?: TlsFiles): Promise<ClientUrlListener> {
  if (url.protocol === "unix:" || url.protocol === "unixs:") {
    throw new Error(`rpc: ${url.href}: unix socket client URLs are not supported yet`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`rpc: ${url.href}: unsupported client URL scheme ${url.protocol}`);
  }
  const wrap = url.protocol === "https:" ? await tlsWrapper(url, tlsFiles) : (socket: net.Socket) => socket;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? 80 : Number(url.port);
  let accept: ((socket: net.Socket) => void) | undefined;
  const held: net.Socket[] = [];
  const server = net.createServer((raw) => {
    // responses often leave in more than one write; with Nagle on, a client's delayed ACK stalls each by ~40 ms
    raw.setNoDelay(true);
    const socket = wrap(raw);
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

/** Wraps an accepted connection in TLS; the certificate is read here, so a bad file fails the start. */
async function tlsWrapper(url: URL, files: TlsFiles | undefined): Promise<(socket: net.Socket) => net.Socket> {
  if (files === undefined) throw new Error(`rpc: ${url.href}: an https:// client URL needs a certificate and key`);
  const tls = await import("node:tls");
  let secureContext;
  try {
    secureContext = tls.createSecureContext({
      cert: await Deno.readTextFile(files.certFile),
      key: await Deno.readTextFile(files.keyFile),
    });
  } catch (err) {
    throw new Error(
      `rpc: ${url.href}: cannot load TLS key/cert (${files.certFile}, ${files.keyFile}): ${(err as Error).message}`,
    );
  }
  return (socket) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ["h2", "http/1.1"] });
    // a failed handshake (a plain-HTTP client, an untrusted certificate) ends the connection, never the server
    socket.on("error", () => {});
    return secure;
  };
}
