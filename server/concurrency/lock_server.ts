// etcd's v3lock service (etcdserver/api/v3lock): concurrency's Mutex run inside the member. A lock is a key
// <name>/<lease hex> with the session's lease; the owner is the key under the name created first, and a waiter
// watches for the deletion of the key created just before its own (a watch, not polling). An expired lease releases
// its lock like an unlock.
import type { LockRequest, LockResponse, UnlockRequest, UnlockResponse } from "../../rpc/gen/v3lockpb/v3lock_pb.ts";
import type { EtcdServer } from "../etcdserver.ts";
import { EMPTY_BYTES } from "../../mvcc/bytes.ts";
import {
  createRevisionIs,
  getByCreate,
  getKey,
  prefixOf,
  putOp,
  rangeOp,
  sessionKey,
  sessionLease,
  waitDeletes,
} from "./kv_ops.ts";

export async function lock(s: EtcdServer, req: LockRequest, signal: AbortSignal): Promise<LockResponse> {
  const lease = await sessionLease(s, req.lease);
  const prefix = prefixOf(req.name);
  const key = sessionKey(prefix, lease);
  // put self among the waiters (or find the key this session already holds) and fetch the owner in one txn
  const owner = rangeOp(getByCreate(prefix, true));
  const resp = await s.txn({
    $typeName: "etcdserverpb.TxnRequest",
    compare: [createRevisionIs(key, 0n)],
    success: [putOp(key, EMPTY_BYTES, lease), owner],
    failure: [rangeOp(getKey(key)), owner],
  });
  const first = resp.responses[0].response, second = resp.responses[1].response;
  let myRev = resp.header!.revision;
  if (!resp.succeeded && first.case === "responseRange") myRev = first.value.kvs[0].createRevision;
  const ownerKvs = second.case === "responseRange" ? second.value.kvs : [];
  if (ownerKvs.length === 0 || ownerKvs[0].createRevision === myRev) {
    return { $typeName: "v3lockpb.LockResponse", header: resp.header, key };
  }
  try {
    const header = await waitDeletes(s, prefix, myRev - 1n, signal);
    return { $typeName: "v3lockpb.LockResponse", header, key };
  } catch (err) {
    // gave up waiting (the client went away): leave the queue, as the Mutex does
    await unlock(s, { $typeName: "v3lockpb.UnlockRequest", key }).catch(() => {});
    throw err;
  }
}

export async function unlock(s: EtcdServer, req: UnlockRequest): Promise<UnlockResponse> {
  const resp = await s.deleteRange({
    $typeName: "etcdserverpb.DeleteRangeRequest",
    key: req.key,
    rangeEnd: EMPTY_BYTES,
    prevKv: false,
  });
  return { $typeName: "v3lockpb.UnlockResponse", header: resp.header };
}
