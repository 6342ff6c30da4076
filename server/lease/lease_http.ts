// Lease calls a follower forwards to the leader, whose lessor is the only one that counts down (etcd's leasehttp):
// `POST /leases` (a LeaseKeepAliveRequest, answered with a LeaseKeepAliveResponse) and `POST /leases/internal` (a
// leasepb.LeaseInternalRequest wrapping a LeaseTimeToLiveRequest) on the peer URLs, protobuf bodies, etcd's statuses.
import { type PeerRequest, type PeerResponse, plainError } from "../peer/http.ts";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  LeaseKeepAliveRequestSchema,
  LeaseKeepAliveResponseSchema,
  type LeaseTimeToLiveRequest,
  LeaseTimeToLiveRequestSchema,
  type LeaseTimeToLiveResponse,
  LeaseTimeToLiveResponseSchema,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { ProtoReader, ProtoWriter, WIRE_BYTES } from "../../wal/proto_wire.ts";
import { ErrGRPCLeaseNotFound } from "../apply_errors.ts";
import { readPeerBody } from "../peer/transport.ts";
import { EMPTY_BYTES } from "../../mvcc/bytes.ts";

export const LEASE_PREFIX = "/leases";
export const LEASE_INTERNAL_PREFIX = "/leases/internal";
/** etcd's ErrLeaseHTTPTimeout. */
const APPLY_TIMEOUT_TEXT = "waiting for node to catch up its applied index has timed out";
const PROTOBUF = { "content-type": "application/protobuf" };

export interface LeaseHttpDeps {
  /** Renews on this member's (primary) lessor; throws ErrGRPCLeaseNotFound, or an error for anything else. */
  renew(id: bigint): Promise<number>;
  /** undefined: no such lease. */
  timeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse | undefined>;
  /** Resolves once what was committed is applied; false after etcd's 1 s. */
  caughtUp(): Promise<boolean>;
}

/** The peer-side handler of both paths (etcd's leaseHandler). */
export function leaseHttpHandler(deps: LeaseHttpDeps): (req: PeerRequest, res: PeerResponse) => void {
  return (req, res) => {
    if (req.method !== "POST") return plainError(res, 405, "Method Not Allowed");
    readPeerBody(req, async (body) => {
      const path = (req.url ?? "").split("?")[0];
      try {
        if (path === LEASE_PREFIX) {
          let id: bigint;
          try {
            id = fromBinary(LeaseKeepAliveRequestSchema, body).ID;
          } catch {
            return plainError(res, 400, "error unmarshalling request");
          }
          if (!(await deps.caughtUp())) return plainError(res, 408, APPLY_TIMEOUT_TEXT);
          const ttl = await deps.renew(id);
          const out = toBinary(
            LeaseKeepAliveResponseSchema,
            create(LeaseKeepAliveResponseSchema, { ID: id, TTL: BigInt(ttl) }),
          );
          return res.writeHead(200, PROTOBUF).end(out);
        }
        let inner: LeaseTimeToLiveRequest;
        try {
          inner = fromBinary(LeaseTimeToLiveRequestSchema, unwrap(body));
        } catch {
          return plainError(res, 400, "error unmarshalling request");
        }
        if (!(await deps.caughtUp())) return plainError(res, 408, APPLY_TIMEOUT_TEXT);
        const ttl = await deps.timeToLive(inner);
        if (ttl === undefined) return plainError(res, 404, "lease not found");
        return res.writeHead(200, PROTOBUF).end(wrap(toBinary(LeaseTimeToLiveResponseSchema, ttl)));
      } catch (err) {
        if (err === ErrGRPCLeaseNotFound) return plainError(res, 404, "lease not found");
        return plainError(res, 400, (err as Error).message);
      }
    });
  };
}

/** Renews on the leader through its peer URL (etcd's RenewHTTP); 404 is lease-not-found. */
export async function renewHTTP(peerUrl: string, id: bigint, signal: AbortSignal): Promise<number> {
  const body = toBinary(LeaseKeepAliveRequestSchema, create(LeaseKeepAliveRequestSchema, { ID: id }));
  const b = await post(new URL(LEASE_PREFIX, peerUrl), body, signal);
  const resp = fromBinary(LeaseKeepAliveResponseSchema, b);
  if (resp.ID !== id) throw new Error("lease: renew id mismatch");
  return Number(resp.TTL);
}

/** TimeToLive from the leader through its peer URL (etcd's TimeToLiveHTTP); 404 is lease-not-found. */
export async function timeToLiveHTTP(
  peerUrl: string,
  req: LeaseTimeToLiveRequest,
  signal: AbortSignal,
): Promise<LeaseTimeToLiveResponse> {
  const b = await post(
    new URL(LEASE_INTERNAL_PREFIX, peerUrl),
    wrap(toBinary(LeaseTimeToLiveRequestSchema, req)),
    signal,
  );
  const resp = fromBinary(LeaseTimeToLiveResponseSchema, unwrap(b));
  if (resp.ID !== req.ID) throw new Error("lease: renew id mismatch");
  return resp;
}

async function post(url: URL, body: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
  const res = await fetch(url, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: PROTOBUF, signal });
  const b = new Uint8Array(await res.arrayBuffer());
  if (res.status === 404) throw ErrGRPCLeaseNotFound;
  if (res.status !== 200) throw new Error(`lease: unknown error(${new TextDecoder().decode(b).trim()})`);
  return b;
}

/** leasepb.LeaseInternalRequest / LeaseInternalResponse: the one message in field 1. */
function wrap(inner: Uint8Array): Uint8Array {
  const w = new ProtoWriter(inner.length + 6);
  w.bytesField(1, inner);
  return w.view();
}

function unwrap(b: Uint8Array): Uint8Array {
  const r = new ProtoReader(b);
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === (1 << 3 | WIRE_BYTES)) return r.bytes();
    r.skip(tag & 7);
  }
  return EMPTY_BYTES;
}
