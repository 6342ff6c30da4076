// What etcd's server-side lock and election (v3lock, v3election, built on clientv3/concurrency) ask of the store,
// done through the member's own KV API (raft for writes, linearizable reads) and its watchable store: the txns and
// ranges of concurrency's Mutex and Election, and waiting for keys to be deleted.
import { create } from "@bufbuild/protobuf";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeRequestSchema,
  type RequestOp,
  type ResponseHeader,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { Event_EventType, type KeyValue } from "../../rpc/gen/mvccpb/kv_pb.ts";
import type { WatchSink } from "../../mvcc/watcher_group.ts";
import { EMPTY_BYTES } from "../../mvcc/bytes.ts";
import { ErrGRPCCompacted, RpcError } from "../apply_errors.ts";
import { GrpcCode } from "../../rpc/status_codes.ts";
import type { EtcdServer } from "../etcdserver.ts";

/** A session's TTL when the caller gives no lease (concurrency's defaultSessionTTL). */
const DEFAULT_SESSION_TTL = 60n;

const enc = new TextEncoder();

/** bytes + "/" : a lock's or an election's key prefix. */
export function prefixOf(name: Uint8Array): Uint8Array {
  const p = new Uint8Array(name.length + 1);
  p.set(name);
  p[name.length] = 0x2f;
  return p;
}

/** prefix + the lease ID in hex (concurrency's fmt.Sprintf("%s%x")): a session's key under a lock or election. */
export function sessionKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  const hex = enc.encode(lease.toString(16));
  const k = new Uint8Array(prefix.length + hex.length);
  k.set(prefix);
  k.set(hex, prefix.length);
  return k;
}

/** The session's lease: the caller's, or a new one of 60 s that nobody keeps alive (the session is orphaned). */
export async function sessionLease(s: EtcdServer, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  return (await s.leaseGrant({ $typeName: "etcdserverpb.LeaseGrantRequest", TTL: DEFAULT_SESSION_TTL, ID: 0n })).ID;
}

export function createRevisionIs(key: Uint8Array, rev: bigint) {
  return {
    $typeName: "etcdserverpb.Compare" as const,
    result: Compare_CompareResult.EQUAL,
    target: Compare_CompareTarget.CREATE,
    key,
    rangeEnd: EMPTY_BYTES,
    targetUnion: { case: "createRevision" as const, value: rev },
  };
}

export function putOp(key: Uint8Array, value: Uint8Array, lease: bigint): RequestOp {
  return {
    $typeName: "etcdserverpb.RequestOp",
    request: {
      case: "requestPut",
      value: {
        $typeName: "etcdserverpb.PutRequest",
        key,
        value,
        lease,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
      },
    },
  };
}

export function rangeOp(r: RangeRequest): RequestOp {
  return { $typeName: "etcdserverpb.RequestOp", request: { case: "requestRange", value: r } };
}

export function deleteOp(key: Uint8Array): RequestOp {
  return {
    $typeName: "etcdserverpb.RequestOp",
    request: {
      case: "requestDeleteRange",
      value: { $typeName: "etcdserverpb.DeleteRangeRequest", key, rangeEnd: EMPTY_BYTES, prevKv: false },
    },
  };
}

export function getKey(key: Uint8Array): RangeRequest {
  return create(RangeRequestSchema, { key });
}

/** The key under prefix created first (clientv3.WithFirstCreate) or, with maxCreateRev, last at or before it. */
export function getByCreate(prefix: Uint8Array, first: boolean, maxCreateRev = 0n): RangeRequest {
  return create(RangeRequestSchema, {
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    limit: 1n,
    sortTarget: RangeRequest_SortTarget.CREATE,
    sortOrder: first ? RangeRequest_SortOrder.ASCEND : RangeRequest_SortOrder.DESCEND,
    maxCreateRevision: maxCreateRev,
  });
}

/** The end of a prefix range (clientv3.GetPrefixRangeEnd). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = new Uint8Array(prefix); // a copy even of a node Buffer, whose slice() is a view
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

/** A watch run by the member for itself; `retry` hands over what a full consumer refused (see watchKey). */
export interface KeyWatch {
  done: Promise<void>;
  retry(): void;
}

/**
 * Calls `fn` with every event on [key, end) (end undefined: key alone) from revision `rev` on, until it returns true
 * (done resolves) or the signal aborts or the revision is compacted (done rejects). While `room` says no, results
 * are refused and the watcher is parked by the watchable store until retry(): a slow consumer holds nothing.
 */
export function watchKey(
  s: EtcdServer,
  key: Uint8Array,
  end: Uint8Array | undefined,
  rev: number,
  signal: AbortSignal,
  fn: (kv: KeyValue, isDelete: boolean) => boolean,
  room: () => boolean = () => true,
): KeyWatch {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  let stopped = false;
  const stop = (err?: unknown) => {
    if (stopped) return;
    stopped = true;
    s.watchable.cancel(w);
    signal.removeEventListener("abort", onAbort);
    if (err === undefined) resolve();
    else reject(err);
  };
  const onAbort = () => stop(signal.reason ?? new Error("canceled"));
  const sink: WatchSink = {
    send(_w, events, _revision, compactRevision) {
      if (stopped) return true;
      if (compactRevision > 0) {
        stop(ErrGRPCCompacted);
        return true;
      }
      if (!room()) return false;
      for (const e of events) {
        if (fn(e.kv!, e.type === Event_EventType.DELETE)) {
          stop();
          break;
        }
      }
      return true;
    },
  };
  const w = s.watchable.watch(0n, key, end, rev, sink);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return { done: promise, retry: () => s.watchable.retryVictims(sink) };
}

/**
 * Waits until every key under prefix created at or before maxCreateRev is deleted (concurrency's waitDeletes):
 * always the newest of them, one at a time, so each waiter watches only the key just before its own.
 */
export async function waitDeletes(
  s: EtcdServer,
  prefix: Uint8Array,
  maxCreateRev: bigint,
  signal: AbortSignal,
): Promise<ResponseHeader> {
  for (;;) {
    const resp = await s.range(getByCreate(prefix, false, maxCreateRev));
    if (resp.kvs.length === 0) return resp.header!;
    const from = Number(resp.header!.revision);
    await watchKey(s, resp.kvs[0].key, undefined, from, signal, (_kv, isDelete) => isDelete).done;
  }
}

/**
 * etcd's lock and election servers are clients of their own member: the errors of the calls they make come back to
 * them as plain errors, which gRPC answers with code Unknown and the same text. So do these.
 */
export function asClientError(err: unknown): unknown {
  return err instanceof RpcError && err.code !== GrpcCode.Unknown ? new RpcError(GrpcCode.Unknown, err.message) : err;
}

/** fn's rejection as asClientError has it. */
export async function asClient<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asClientError(err);
  }
}
