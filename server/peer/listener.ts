// The peer port's listener: each accepted connection served by detcd's HTTP/1.1 server (see http.ts), with Nagle off
// as on the client port (raft messages are small and latency-bound).
import { Buffer } from "node:buffer";
import net from "node:net";
import { H1Connection } from "../../rpc/h1/connection.ts";
import type { PeerRequest, PeerResponse } from "./http.ts";

export interface PeerListener {
  /** Stops accepting and ends every connection (streams included). */
  close(): Promise<void>;
}

export function listenPeerUrl(
  url: URL,
  handler: (req: PeerRequest, res: PeerResponse) => void,
): Promise<PeerListener> {
  if (url.protocol !== "http:") {
    return Promise.reject(new Error(`peer URL ${url.href}: only http:// is supported yet (no TLS, no unix sockets)`));
  }
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    new H1Connection(socket, Buffer.alloc(0), handler);
  });
  return new Promise((resolve, reject) => {
    srv.once("error", (err) => reject(new Error(`listen peer URL ${url.href}: ${err.message}`)));
    srv.listen(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ""), () =>
      resolve({
        close: () =>
          new Promise<void>((done) => {
            srv.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      }));
  });
}
