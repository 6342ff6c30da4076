/**
 * The KV applier (etcd's applierV3backend with its quota and "capped" wrappers): executes decoded KV requests on
 * the KVStore and builds protobuf-es responses. Response headers carry only the revision; the server fills in
 * cluster id, member id and raft term. Failures are thrown as RpcError (apply_errors.ts).
 *
 * Also holds the request checks etcd's gRPC layer runs before proposing (v3rpc/key.go), and quota costs.
 */
import {
  type CompactionRequest,
  type CompactionResponse,
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { compareBytes, EMPTY_BYTES, latin1 } from "../mvcc/bytes.ts";
import { newKeyValue } from "../mvcc/kv_codec.ts";
import type { KVStore } from "../mvcc/kvstore.ts";
import type { RangeOptions, RangeResult } from "../mvcc/kvstore_txn.ts";
import {
  ErrGRPCCompacted,
  ErrGRPCCorrupt,
  ErrGRPCDuplicateKey,
  ErrGRPCEmptyKey,
  ErrGRPCFutureRev,
  ErrGRPCKeyNotFound,
  ErrGRPCLeaseNotFound,
  ErrGRPCLeaseProvided,
  ErrGRPCNoSpace,
  ErrGRPCTooManyOps,
  ErrGRPCValueProvided,
  type RpcError,
  toRpcError,
} from "./apply_errors.ts";

/** etcd's default --quota-backend-bytes (2 GiB). */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
/** Per-key overhead etcd adds to a put's quota cost. */
const KV_OVERHEAD = 256;

export interface ApplierOptions {
  /**
   * Whether a lease exists; puts with an unknown lease fail with ErrGRPCLeaseNotFound. Default: none does, which is
   * true until detcd grants leases.
   */
  leaseExists?: (id: bigint) => boolean;
  /**
   * Backend quota in bytes: 0 or absent means DEFAULT_QUOTA_BYTES, negative disables it. Compared, as etcd's
   * backendQuota does, with the database size (Backend.dbSize: what etcd's bbolt would take, or the file if larger).
   */
  quotaBackendBytes?: number;
}

/** What ranges read through: a store read view or the open write transaction. */
interface RangeReader {
  readonly rev: number;
  readonly firstRev: number;
  range(key: Uint8Array, end?: Uint8Array, ro?: RangeOptions): RangeResult;
}

interface TxnWriter extends RangeReader {
  readonly changes: KeyValue[];
  put(key: Uint8Array, value: Uint8Array, lease?: bigint): number;
  deleteRange(key: Uint8Array, end?: Uint8Array): { deleted: number; rev: number };
}

/** A header with the revision only; the server fills in the rest. */
export function header(rev: number): ResponseHeader {
  return { $typeName: "etcdserverpb.ResponseHeader", clusterId: 0n, memberId: 0n, revision: BigInt(rev), raftTerm: 0n };
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const SORTERS: Record<number, (a: KeyValue, b: KeyValue) => number> = {
  [RangeRequest_SortTarget.KEY]: (a, b) => compareBytes(a.key, b.key),
  [RangeRequest_SortTarget.VERSION]: (a, b) => cmpBig(a.version, b.version),
  [RangeRequest_SortTarget.CREATE]: (a, b) => cmpBig(a.createRevision, b.createRevision),
  [RangeRequest_SortTarget.MOD]: (a, b) => cmpBig(a.modRevision, b.modRevision),
  [RangeRequest_SortTarget.VALUE]: (a, b) => compareBytes(a.value, b.value),
};

/** Removes, in place, the kvs for which `drop` holds. */
function prune(kvs: KeyValue[], drop: (kv: KeyValue) => boolean): void {
  let j = 0;
  for (let i = 0; i < kvs.length; i++) if (!drop(kvs[i])) kvs[j++] = kvs[i];
  kvs.length = j;
}

export class Applier {
  readonly store: KVStore;
  readonly #leaseExists: (id: bigint) => boolean;
  readonly #quota: number;
  /** Set while the NOSPACE alarm is raised: writes that cost quota are refused like etcd's applierV3Capped. */
  noSpaceAlarm = false;
  /** Set while the CORRUPT alarm is raised: every write is refused like etcd's applierV3Corrupt. */
  corruptAlarm = false;

  constructor(store: KVStore, opts: ApplierOptions = {}) {
    this.store = store;
    this.#leaseExists = opts.leaseExists ?? (() => false);
    const q = opts.quotaBackendBytes ?? 0;
    this.#quota = q === 0 ? DEFAULT_QUOTA_BYTES : q;
  }

  /** Whether a request of this quota cost fits (etcd's backendQuota.Available). */
  quotaAvailable(cost: number): boolean {
    if (cost === 0 || this.#quota < 0) return true;
    return this.store.backend.dbSize() + cost < this.#quota;
  }

  range(r: RangeRequest): RangeResponse {
    return this.#range(r, this.store.read());
  }

  /** Applies the put even when over quota, then reports ErrGRPCNoSpace (so the server raises the alarm), as etcd. */
  put(p: PutRequest): PutResponse {
    if (this.corruptAlarm) throw ErrGRPCCorrupt;
    if (this.noSpaceAlarm) throw ErrGRPCNoSpace;
    const ok = this.quotaAvailable(costPut(p));
    if (p.lease !== 0n && !this.#leaseExists(p.lease)) throw ErrGRPCLeaseNotFound;
    const txn = this.store.write();
    let resp: PutResponse;
    try {
      resp = this.#put(p, txn);
    } finally {
      txn.end();
    }
    if (!ok) throw ErrGRPCNoSpace;
    return resp;
  }

  deleteRange(dr: DeleteRangeRequest): DeleteRangeResponse {
    if (this.corruptAlarm) throw ErrGRPCCorrupt;
    const txn = this.store.write();
    try {
      return this.#deleteRange(dr, txn);
    } finally {
      txn.end();
    }
  }

  txn(rt: TxnRequest): TxnResponse {
    const isWrite = !isTxnReadonly(rt);
    // read-only txns are served beside the capped applier, as etcd serves them from applyV3Base
    if (this.corruptAlarm && isWrite) throw ErrGRPCCorrupt;
    const cost = costTxn(rt);
    // etcd's applierV3Capped refuses a txn by its quota cost: deletes and nested puts still go through
    if (this.noSpaceAlarm && cost > 0) throw ErrGRPCNoSpace;
    const ok = this.quotaAvailable(cost);
    const rv = this.store.read();
    const path: boolean[] = [];
    compareToPath(rv, rt, path);
    if (isWrite) this.#checkRequests(rv, rt, path, 0, true);
    this.#checkRequests(rv, rt, path, 0, false);
    let resp: TxnResponse;
    if (isWrite) {
      const txn = this.store.write();
      try {
        resp = this.#applyTxn(txn, rt, path, 0).resp;
      } finally {
        txn.end();
      }
      resp.header = header(txn.changes.length !== 0 ? txn.rev + 1 : txn.rev);
    } else {
      resp = this.#applyTxn(rv, rt, path, 0).resp;
      resp.header = header(rv.rev);
    }
    if (!ok) throw ErrGRPCNoSpace;
    return resp;
  }

  /**
   * Compacts the store. `physical` resolves when the compaction is durable in the backend (what a request with
   * physical=true waits for).
   */
  compaction(c: CompactionRequest): { response: CompactionResponse; physical: Promise<void> } {
    if (this.corruptAlarm) throw ErrGRPCCorrupt;
    let physical: Promise<void>;
    try {
      physical = this.store.compact(Number(c.revision));
    } catch (e) {
      throw toRpcError(e);
    }
    return {
      response: { $typeName: "etcdserverpb.CompactionResponse", header: header(this.store.rev) },
      physical,
    };
  }

  #range(r: RangeRequest, txn: RangeReader): RangeResponse {
    let limit = Number(r.limit);
    if (
      r.sortOrder !== RangeRequest_SortOrder.NONE || r.minModRevision !== 0n || r.maxModRevision !== 0n ||
      r.minCreateRevision !== 0n || r.maxCreateRevision !== 0n
    ) {
      // Filtered or sorted results are fetched whole and truncated afterwards.
      limit = 0;
    }
    if (limit > 0) limit++; // one extra to know whether there is more
    let rr: RangeResult;
    try {
      rr = txn.range(r.key, r.rangeEnd, { limit, rev: Number(r.revision), countOnly: r.countOnly });
    } catch (e) {
      throw toRpcError(e);
    }
    const kvs = rr.kvs;
    if (r.maxModRevision !== 0n) prune(kvs, (kv) => kv.modRevision > r.maxModRevision);
    if (r.minModRevision !== 0n) prune(kvs, (kv) => kv.modRevision < r.minModRevision);
    if (r.maxCreateRevision !== 0n) prune(kvs, (kv) => kv.createRevision > r.maxCreateRevision);
    if (r.minCreateRevision !== 0n) prune(kvs, (kv) => kv.createRevision < r.minCreateRevision);

    let order = r.sortOrder;
    // The store returns keys in ascending order, so only other targets default to ASCEND.
    if (r.sortTarget !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE) {
      order = RangeRequest_SortOrder.ASCEND;
    }
    const sorter = SORTERS[r.sortTarget];
    if (order === RangeRequest_SortOrder.ASCEND && r.sortTarget !== RangeRequest_SortTarget.KEY && sorter) {
      kvs.sort(sorter);
    } else if (order === RangeRequest_SortOrder.DESCEND && sorter) {
      kvs.sort((a, b) => sorter(b, a));
    }

    let more = false;
    if (r.limit > 0n && kvs.length > Number(r.limit)) {
      kvs.length = Number(r.limit);
      more = true;
    }
    if (r.keysOnly) {
      for (let i = 0; i < kvs.length; i++) {
        const kv = kvs[i];
        kvs[i] = newKeyValue(kv.key, EMPTY_BYTES, kv.createRevision, kv.modRevision, kv.version, kv.lease);
      }
    }
    return { $typeName: "etcdserverpb.RangeResponse", header: header(rr.rev), kvs, more, count: BigInt(rr.count) };
  }

  #put(p: PutRequest, txn: TxnWriter): PutResponse {
    let val = p.value, lease = p.lease;
    let prev: KeyValue | undefined;
    if (p.ignoreValue || p.ignoreLease || p.prevKv) prev = txn.range(p.key).kvs[0];
    if ((p.ignoreValue || p.ignoreLease) && prev === undefined) throw ErrGRPCKeyNotFound;
    if (p.ignoreValue) val = prev!.value;
    if (p.ignoreLease) lease = prev!.lease;
    const rev = txn.put(p.key, val, lease);
    return { $typeName: "etcdserverpb.PutResponse", header: header(rev), prevKv: p.prevKv ? prev : undefined };
  }

  #deleteRange(dr: DeleteRangeRequest, txn: TxnWriter): DeleteRangeResponse {
    const prevKvs = dr.prevKv ? txn.range(dr.key, dr.rangeEnd).kvs : [];
    const { deleted, rev } = txn.deleteRange(dr.key, dr.rangeEnd);
    return { $typeName: "etcdserverpb.DeleteRangeResponse", header: header(rev), deleted: BigInt(deleted), prevKvs };
  }

  /** Checks the ops of the chosen branches before anything is applied (etcd's checkRequests). */
  #checkRequests(rv: RangeReader, rt: TxnRequest, path: boolean[], at: number, puts: boolean): number {
    let next = at + 1;
    for (const op of path[at] ? rt.success : rt.failure) {
      const req = op.request;
      if (req.case === "requestTxn") {
        next = this.#checkRequests(rv, req.value, path, next, puts);
      } else if (puts && req.case === "requestPut") {
        const p = req.value;
        if ((p.ignoreValue || p.ignoreLease) && rv.range(p.key).kvs.length === 0) throw ErrGRPCKeyNotFound;
        if (p.lease !== 0n && !this.#leaseExists(p.lease)) throw ErrGRPCLeaseNotFound;
      } else if (!puts && req.case === "requestRange") {
        const rev = req.value.revision;
        if (rev !== 0n && rev > BigInt(rv.rev)) throw ErrGRPCFutureRev;
        if (rev !== 0n && rev < BigInt(rv.firstRev)) throw ErrGRPCCompacted;
      }
    }
    return next;
  }

  /** Applies the chosen branch of rt; returns its response and the path position after its nested txns. */
  #applyTxn(txn: RangeReader, rt: TxnRequest, path: boolean[], at: number): { resp: TxnResponse; next: number } {
    const succeeded = path[at];
    let next = at + 1;
    const reqs = succeeded ? rt.success : rt.failure;
    const responses: ResponseOp[] = new Array(reqs.length);
    for (let i = 0; i < reqs.length; i++) {
      const req = reqs[i].request;
      let response: ResponseOp["response"];
      switch (req.case) {
        case "requestRange":
          response = { case: "responseRange", value: this.#range(req.value, txn) };
          break;
        case "requestPut":
          response = { case: "responsePut", value: this.#put(req.value, txn as TxnWriter) };
          break;
        case "requestDeleteRange":
          response = { case: "responseDeleteRange", value: this.#deleteRange(req.value, txn as TxnWriter) };
          break;
        case "requestTxn": {
          const sub = this.#applyTxn(txn, req.value, path, next);
          next = sub.next;
          response = { case: "responseTxn", value: sub.resp };
          break;
        }
        default:
          response = { case: undefined };
      }
      responses[i] = { $typeName: "etcdserverpb.ResponseOp", response };
    }
    // Nested txn responses keep a header with revision 0, as etcd's newTxnResp leaves them.
    return { resp: { $typeName: "etcdserverpb.TxnResponse", header: header(0), succeeded, responses }, next };
  }
}

/** Appends, depth first, the compare result of rt and of the nested txns on its chosen branch. */
function compareToPath(rv: RangeReader, rt: TxnRequest, path: boolean[]): void {
  const ok = applyCompares(rv, rt.compare);
  path.push(ok);
  for (const op of ok ? rt.success : rt.failure) {
    if (op.request.case === "requestTxn") compareToPath(rv, op.request.value, path);
  }
}

function applyCompares(rv: RangeReader, cmps: Compare[]): boolean {
  for (const c of cmps) if (!applyCompare(rv, c)) return false;
  return true;
}

const ZERO_KV = newKeyValue(EMPTY_BYTES, EMPTY_BYTES, 0n, 0n, 0n, 0n);

function applyCompare(rv: RangeReader, c: Compare): boolean {
  let kvs: KeyValue[];
  try {
    kvs = rv.range(c.key, c.rangeEnd).kvs;
  } catch {
    return false;
  }
  if (kvs.length === 0) {
    // A missing key has no value to compare (nil and empty are the same in gRPC): value compares fail.
    if (c.target === Compare_CompareTarget.VALUE) return false;
    return compareKV(c, ZERO_KV);
  }
  for (const kv of kvs) if (!compareKV(c, kv)) return false;
  return true;
}

function compareKV(c: Compare, kv: KeyValue): boolean {
  const u = c.targetUnion;
  let result: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      result = compareBytes(kv.value, u.case === "value" ? u.value : EMPTY_BYTES);
      break;
    case Compare_CompareTarget.CREATE:
      result = cmpBig(kv.createRevision, u.case === "createRevision" ? u.value : 0n);
      break;
    case Compare_CompareTarget.MOD:
      result = cmpBig(kv.modRevision, u.case === "modRevision" ? u.value : 0n);
      break;
    case Compare_CompareTarget.VERSION:
      result = cmpBig(kv.version, u.case === "version" ? u.value : 0n);
      break;
    case Compare_CompareTarget.LEASE:
      result = cmpBig(kv.lease, u.case === "lease" ? u.value : 0n);
      break;
    default:
      result = 0;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return result === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return result !== 0;
    case Compare_CompareResult.GREATER:
      return result > 0;
    case Compare_CompareResult.LESS:
      return result < 0;
  }
  return true;
}

/** True when every op on both branches is a serializable range (etcd's isTxnSerializable; vacuously for none). */
export function isTxnSerializable(r: TxnRequest): boolean {
  for (const u of r.success) if (u.request.case !== "requestRange" || !u.request.value.serializable) return false;
  for (const u of r.failure) if (u.request.case !== "requestRange" || !u.request.value.serializable) return false;
  return true;
}

/** True when every op on both branches is a range (etcd's isTxnReadonly; nested txns count as writes). */
export function isTxnReadonly(r: TxnRequest): boolean {
  for (const u of r.success) if (u.request.case !== "requestRange") return false;
  for (const u of r.failure) if (u.request.case !== "requestRange") return false;
  return true;
}

/** Quota cost of a put (etcd's costPut). */
export function costPut(r: PutRequest): number {
  return KV_OVERHEAD + r.key.length + r.value.length;
}

/** Quota cost of a txn: the costlier branch's top-level puts (etcd's costTxn). */
export function costTxn(r: TxnRequest): number {
  let s = 0, f = 0;
  for (const u of r.success) if (u.request.case === "requestPut") s += costPut(u.request.value);
  for (const u of r.failure) if (u.request.case === "requestPut") f += costPut(u.request.value);
  return f > s ? f : s;
}

// ---- Request validation done before proposing, as etcd's v3rpc/key.go. Each returns null when valid. ----

export function checkRangeRequest(r: RangeRequest): RpcError | null {
  return r.key.length === 0 ? ErrGRPCEmptyKey : null;
}

export function checkPutRequest(r: PutRequest): RpcError | null {
  if (r.key.length === 0) return ErrGRPCEmptyKey;
  if (r.ignoreValue && r.value.length !== 0) return ErrGRPCValueProvided;
  if (r.ignoreLease && r.lease !== 0n) return ErrGRPCLeaseProvided;
  return null;
}

export function checkDeleteRequest(r: DeleteRangeRequest): RpcError | null {
  return r.key.length === 0 ? ErrGRPCEmptyKey : null;
}

function checkRequestOp(u: RequestOp, maxTxnOps: number): RpcError | null {
  switch (u.request.case) {
    case "requestRange":
      return checkRangeRequest(u.request.value);
    case "requestPut":
      return checkPutRequest(u.request.value);
    case "requestDeleteRange":
      return checkDeleteRequest(u.request.value);
    case "requestTxn":
      return checkTxnRequest(u.request.value, maxTxnOps);
    default:
      // An empty op: etcd reports it as a missing key.
      return ErrGRPCKeyNotFound;
  }
}

/** etcd's checkTxnRequest: op count limit (shared with nested txns) and non-empty keys. */
export function checkTxnRequest(r: TxnRequest, maxTxnOps: number): RpcError | null {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps) return ErrGRPCTooManyOps;
  for (const c of r.compare) if (c.key.length === 0) return ErrGRPCEmptyKey;
  for (const u of r.success) {
    const e = checkRequestOp(u, maxTxnOps - opc);
    if (e) return e;
  }
  for (const u of r.failure) {
    const e = checkRequestOp(u, maxTxnOps - opc);
    if (e) return e;
  }
  return null;
}

/** A deleted interval [begin, end); an empty end is unbounded (etcd's string-affine intervals). */
interface DelInterval {
  begin: Uint8Array;
  end: Uint8Array;
}

function intersects(dels: DelInterval[], k: Uint8Array): boolean {
  for (const d of dels) {
    if (compareBytes(k, d.begin) >= 0 && (d.end.length === 0 || compareBytes(k, d.end) < 0)) return true;
  }
  return false;
}

/**
 * etcd's checkIntervals: within one branch (and its nested txns), a key may not be put twice or be both put and
 * deleted; puts on the two branches of one nested txn may repeat each other. Returns the puts and deletions.
 */
export function checkIntervals(
  reqs: RequestOp[],
): { puts: Set<string>; dels: DelInterval[] } | RpcError {
  const dels: DelInterval[] = [];
  for (const req of reqs) {
    if (req.request.case !== "requestDeleteRange") continue;
    const d = req.request.value;
    if (d.rangeEnd.length !== 0) {
      dels.push({ begin: d.key, end: d.rangeEnd });
    } else {
      // A single key as the interval [key, key+"\0").
      const end = new Uint8Array(d.key.length + 1);
      end.set(d.key);
      dels.push({ begin: d.key, end });
    }
  }
  const puts = new Set<string>();
  for (const req of reqs) {
    if (req.request.case !== "requestTxn") continue;
    const thenRes = checkIntervals(req.request.value.success);
    if (!("puts" in thenRes)) return thenRes;
    const elseRes = checkIntervals(req.request.value.failure);
    if (!("puts" in elseRes)) return elseRes;
    for (const k of thenRes.puts) {
      if (puts.has(k) || intersects(dels, fromLatin1(k))) return ErrGRPCDuplicateKey;
      puts.add(k);
    }
    for (const k of elseRes.puts) {
      if (puts.has(k) && !thenRes.puts.has(k)) return ErrGRPCDuplicateKey;
      if (intersects(dels, fromLatin1(k))) return ErrGRPCDuplicateKey;
      puts.add(k);
    }
    for (const d of thenRes.dels) dels.push(d);
    for (const d of elseRes.dels) dels.push(d);
  }
  for (const req of reqs) {
    if (req.request.case !== "requestPut") continue;
    const key = req.request.value.key;
    const k = latin1(key);
    if (puts.has(k) || intersects(dels, key)) return ErrGRPCDuplicateKey;
    puts.add(k);
  }
  return { puts, dels };
}

function fromLatin1(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** All checks etcd's kvServer.Txn runs: checkTxnRequest, then checkIntervals on both branches. */
export function validateTxnRequest(r: TxnRequest, maxTxnOps: number): RpcError | null {
  const e = checkTxnRequest(r, maxTxnOps);
  if (e) return e;
  for (const branch of [r.success, r.failure]) {
    const res = checkIntervals(branch);
    if (!("puts" in res)) return res;
  }
  return null;
}
