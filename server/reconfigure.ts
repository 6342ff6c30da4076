// Whether a membership change may be proposed (etcd's mayAddMember, mayRemoveMember, mayPromoteMember): with
// --strict-reconfig-check (the default), a change must leave enough started members for a quorum, and this member
// must have been reaching the voters it counts on for a health interval; a learner is promoted only once it has
// nearly caught up with the leader. The checks run where the request arrives, before anything is proposed.
import { type NodeId, StateType } from "../raft/types.ts";
import type { Status } from "../raft/status.ts";
import {
  ErrGRPCLearnerNotReady,
  ErrGRPCMemberNotEnoughStarted,
  ErrGRPCNotLeader,
  ErrGRPCUnhealthy,
  type RpcError,
} from "./apply_errors.ts";
import type { RaftCluster } from "./membership.ts";

/** etcd's HealthInterval: how long a peer must have been reachable to count as connected. */
export const HEALTH_INTERVAL_MS = 5000;
/** etcd's readyPercent: a learner whose log matches this share of the leader's may be promoted. */
const LEARNER_READY_PERCENT = 0.9;

export interface ReconfigureView {
  readonly cluster: RaftCluster;
  readonly self: NodeId;
  readonly strict: boolean;
  /** The transport's ActiveSince (Date.now() ms, 0: not reachable). */
  activeSince(id: NodeId): number;
  now(): number;
}

/** The voters this member has reached continuously for HEALTH_INTERVAL_MS, itself included. */
function connectedVoters(v: ReconfigureView): { connected: number; voters: number } {
  const since = v.now() - HEALTH_INTERVAL_MS;
  let connected = 0, voters = 0;
  for (const m of v.cluster.members.values()) {
    if (m.isLearner) continue;
    voters++;
    const t = v.activeSince(m.id);
    if (m.id === v.self || (t !== 0 && t < since)) connected++;
  }
  return { connected, voters };
}

/** A learner does not count towards the quorum, but is added only to a healthy cluster too, as etcd 3.4's. */
export function mayAddMember(v: ReconfigureView, isLearner: boolean): RpcError | undefined {
  if (!v.strict) return undefined;
  if (!isLearner && !v.cluster.isReadyTo("add")) return ErrGRPCMemberNotEnoughStarted;
  const { connected, voters } = connectedVoters(v);
  return connected === voters ? undefined : ErrGRPCUnhealthy;
}

export function mayRemoveMember(v: ReconfigureView, id: NodeId): RpcError | undefined {
  if (!v.strict || v.cluster.members.get(id)?.isLearner) return undefined;
  if (!v.cluster.isReadyTo("remove", id)) return ErrGRPCMemberNotEnoughStarted;
  // a member that is down is not part of the active quorum: removing it is safe
  if (id !== v.self && v.activeSince(id) === 0) return undefined;
  const { connected, voters } = connectedVoters(v);
  return connected - 1 < 1 + Math.floor((voters - 1) / 2) ? ErrGRPCUnhealthy : undefined;
}

/** Only the leader knows how far a learner is: anywhere else this is ErrGRPCNotLeader (the caller forwards). */
export function mayPromoteMember(v: ReconfigureView, status: Status, id: NodeId): RpcError | undefined {
  if (status.softState.raftState !== StateType.Leader) return ErrGRPCNotLeader;
  const progress = status.progress;
  const learner = progress.get(id), leader = progress.get(status.id);
  if (learner !== undefined && leader !== undefined && learner.match < leader.match * LEARNER_READY_PERCENT) {
    return ErrGRPCLearnerNotReady;
  }
  if (v.strict && !v.cluster.isReadyTo("promote", id)) return ErrGRPCMemberNotEnoughStarted;
  return undefined;
}
