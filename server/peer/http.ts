// The peer port's requests and responses: detcd's own HTTP/1.1 server (rpc/h1), as on the client port, because a
// node:http response that lasts (a peer stream) keeps every chunk written to it (measured: 134 MiB after 400 MiB).
export type { H1ServerRequest as PeerRequest, H1ServerResponse as PeerResponse } from "../../rpc/h1/connection.ts";
import type { H1ServerResponse } from "../../rpc/h1/connection.ts";

/** A plain-text answer as Go's http.Error writes one (etcd's peer handlers): the message, then a newline. */
export function plainError(res: H1ServerResponse, status: number, msg: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(`${msg}\n`);
}
