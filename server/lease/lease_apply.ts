// Applying the lease requests raft committed (etcd's applierV3 LeaseGrant, LeaseRevoke, LeaseCheckpoint, with the
// quota and alarm appliers around them): the same on every member, at the same index.
import type {
  LeaseCheckpointRequest,
  LeaseCheckpointResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
} from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { type Applier, header } from "../apply.ts";
import { ErrGRPCCorrupt, ErrGRPCNoSpace } from "../apply_errors.ts";
import type { Lessor } from "./lessor.ts";

/** etcd's leaseOverhead: the quota cost of a grant. */
export const LEASE_QUOTA_COST = 64;

/** Grants even when over quota, then reports NOSPACE (so the server raises the alarm), as etcd's quotaApplierV3. */
export function applyLeaseGrant(lessor: Lessor, a: Applier, req: LeaseGrantRequest): LeaseGrantResponse {
  if (a.corruptAlarm) throw ErrGRPCCorrupt;
  if (a.noSpaceAlarm) throw ErrGRPCNoSpace;
  const ok = a.quotaAvailable(LEASE_QUOTA_COST);
  const l = lessor.grant(req.ID, Number(req.TTL));
  if (!ok) throw ErrGRPCNoSpace;
  return {
    $typeName: "etcdserverpb.LeaseGrantResponse",
    header: header(a.store.rev),
    ID: l.id,
    TTL: BigInt(l.ttl),
    error: "",
  };
}

/** The attached keys are deleted in one revision, so watchers see their DELETEs together. */
export function applyLeaseRevoke(lessor: Lessor, a: Applier, req: LeaseRevokeRequest): LeaseRevokeResponse {
  if (a.corruptAlarm) throw ErrGRPCCorrupt;
  lessor.revoke(req.ID, (keys) => {
    const txn = a.store.write();
    try {
      for (const k of keys) txn.deleteRange(k);
    } finally {
      txn.end();
    }
  });
  return { $typeName: "etcdserverpb.LeaseRevokeResponse", header: header(a.store.rev) };
}

export function applyLeaseCheckpoint(
  lessor: Lessor,
  a: Applier,
  req: LeaseCheckpointRequest,
): LeaseCheckpointResponse {
  for (const c of req.checkpoints) lessor.checkpoint(c.ID, Number(c.remainingTTL));
  return { $typeName: "etcdserverpb.LeaseCheckpointResponse", header: header(a.store.rev) };
}
