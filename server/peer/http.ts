// The peer port's requests and responses: detcd's own HTTP/1.1 server (rpc/h1), as on the client port, because a
// node:http response that lasts (a peer stream) keeps every chunk written to it (measured: 134 MiB after 400 MiB).
export type { H1ServerRequest as PeerRequest, H1ServerResponse as PeerResponse } from "../../rpc/h1/connection.ts";
