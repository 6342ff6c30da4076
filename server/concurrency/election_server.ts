// etcd's v3election service (etcdserver/api/v3election): concurrency's Election run inside the member. A candidate
// is a key <name>/<lease hex> holding its value, with the session's lease; the leader is the key created first, so
// campaigning is waiting for the deletion of every key created before one's own (each a watch). Proclaim and Resign
// act only while the leader key still has the revision the campaign created it at.
import { Buffer } from "node:buffer";
import type {
  CampaignRequest,
  CampaignResponse,
  LeaderKey,
  LeaderRequest,
  LeaderResponse,
  ProclaimRequest,
  ProclaimResponse,
  ResignRequest,
  ResignResponse,
} from "../../rpc/gen/v3electionpb/v3election_pb.ts";
import type { KeyValue } from "../../rpc/gen/mvccpb/kv_pb.ts";
import type { ResponseHeader } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { GrpcCode } from "../../rpc/status_codes.ts";
import { RpcError } from "../apply_errors.ts";
import type { EtcdServer } from "../etcdserver.ts";
import {
  asClientError,
  createRevisionIs,
  deleteOp,
  getByCreate,
  getKey,
  type KeyWatch,
  prefixEnd,
  prefixOf,
  putOp,
  rangeOp,
  sessionKey,
  sessionLease,
  waitDeletes,
  watchKey,
} from "./kv_ops.ts";

// plain errors in etcd, so gRPC's Unknown code with their text
export const ErrMissingLeaderKey = new RpcError(GrpcCode.Unknown, '"leader" field must be provided');
export const ErrElectionNotLeader = new RpcError(GrpcCode.Unknown, "election: not leader");
export const ErrElectionNoLeader = new RpcError(GrpcCode.Unknown, "election: no leader");

export async function campaign(s: EtcdServer, req: CampaignRequest, signal: AbortSignal): Promise<CampaignResponse> {
  const lease = await sessionLease(s, req.lease);
  const prefix = prefixOf(req.name);
  const key = sessionKey(prefix, lease);
  const resp = await s.txn({
    $typeName: "etcdserverpb.TxnRequest",
    compare: [createRevisionIs(key, 0n)],
    success: [putOp(key, req.value, lease)],
    failure: [rangeOp(getKey(key))],
  });
  const leader: LeaderKey = {
    $typeName: "v3electionpb.LeaderKey",
    name: req.name,
    key,
    rev: resp.header!.revision,
    lease,
  };
  const r = resp.responses[0].response;
  if (!resp.succeeded && r.case === "responseRange") {
    // this session already campaigns: take its place, with the new value
    const kv = r.value.kvs[0];
    leader.rev = kv.createRevision;
    if (!Buffer.from(kv.value).equals(req.value)) {
      try {
        await proclaimAs(s, leader, req.value);
      } catch (err) {
        await resignAs(s, leader).catch(() => {});
        throw err;
      }
    }
  }
  try {
    await waitDeletes(s, prefix, leader.rev - 1n, signal);
  } catch (err) {
    if (signal.aborted) await resignAs(s, leader).catch(() => {});
    throw err;
  }
  return { $typeName: "v3electionpb.CampaignResponse", header: resp.header, leader };
}

export async function proclaim(s: EtcdServer, req: ProclaimRequest): Promise<ProclaimResponse> {
  if (req.leader === undefined) throw ErrMissingLeaderKey;
  return { $typeName: "v3electionpb.ProclaimResponse", header: await proclaimAs(s, req.leader, req.value) };
}

export async function resign(s: EtcdServer, req: ResignRequest): Promise<ResignResponse> {
  if (req.leader === undefined) throw ErrMissingLeaderKey;
  return { $typeName: "v3electionpb.ResignResponse", header: await resignAs(s, req.leader) };
}

export async function leader(s: EtcdServer, req: LeaderRequest): Promise<LeaderResponse> {
  const resp = await s.range(getByCreate(prefixOf(req.name), true));
  if (resp.kvs.length === 0) throw ErrElectionNoLeader;
  return { $typeName: "v3electionpb.LeaderResponse", header: resp.header, kv: resp.kvs[0] };
}

/** Responses an observer may have waiting before its watch is parked (the client reads them out). */
const OBSERVE_BACKLOG = 64;

/**
 * Every value the election's leaders proclaim, in order (concurrency's Election.observe): the current leader's key,
 * then its changes until it is deleted, then the next leader's. Without a leader, waits for the first put.
 */
export async function* observe(s: EtcdServer, req: LeaderRequest, signal: AbortSignal): AsyncIterable<LeaderResponse> {
  const prefix = prefixOf(req.name);
  const backlog: LeaderResponse[] = [];
  let wake: (() => void) | undefined;
  let watch: KeyWatch | undefined;
  let ended = false, failure: unknown;
  const room = () => backlog.length < OBSERVE_BACKLOG;
  const post = (header: ResponseHeader | undefined, kv: KeyValue) => {
    backlog.push({ $typeName: "v3electionpb.LeaderResponse", header, kv });
    wake?.();
  };
  const follow = async () => {
    while (!signal.aborted) {
      const resp = await s.range(getByCreate(prefix, true));
      let kv = resp.kvs[0] as KeyValue | undefined;
      if (kv === undefined) {
        // no leader: the first put under the prefix makes one
        const found: KeyValue[] = [];
        const rev = Number(resp.header!.revision);
        watch = watchKey(s, prefix, prefixEnd(prefix), rev, signal, (k, isDelete) => {
          if (!isDelete) found.push(k);
          return found.length > 0;
        }, room);
        await watch.done;
        kv = found[0];
        post(s.header(Number(kv.modRevision)), kv);
      } else {
        post(resp.header, kv);
      }
      // that leader's proclamations, until its key goes
      const from = Number(kv.modRevision) + 1;
      watch = watchKey(s, kv.key, undefined, from, signal, (k, isDelete) => {
        if (!isDelete) post(s.header(Number(k.modRevision)), k);
        return isDelete;
      }, room);
      await watch.done;
    }
  };
  follow().catch((err) => failure = err).finally(() => {
    ended = true;
    wake?.();
  });
  for (;;) {
    if (backlog.length > 0) {
      yield backlog.shift()!;
      if (backlog.length === OBSERVE_BACKLOG - 1) watch?.retry();
      continue;
    }
    if (ended) break;
    await new Promise<void>((r) => wake = r);
    wake = undefined;
  }
  if (failure !== undefined && !signal.aborted) throw asClientError(failure);
}

async function proclaimAs(s: EtcdServer, l: LeaderKey, value: Uint8Array): Promise<ResponseHeader | undefined> {
  const resp = await s.txn({
    $typeName: "etcdserverpb.TxnRequest",
    compare: [createRevisionIs(l.key, l.rev)],
    success: [putOp(l.key, value, l.lease)],
    failure: [],
  });
  if (!resp.succeeded) throw ErrElectionNotLeader;
  return resp.header;
}

async function resignAs(s: EtcdServer, l: LeaderKey): Promise<ResponseHeader | undefined> {
  const resp = await s.txn({
    $typeName: "etcdserverpb.TxnRequest",
    compare: [createRevisionIs(l.key, l.rev)],
    success: [deleteOp(l.key)],
    failure: [],
  });
  return resp.header;
}
