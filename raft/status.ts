// A snapshot of a node's state for monitoring and tests.

import type { HardState, NodeId, SoftState } from "./types.ts";
import type { Raft } from "./raft.ts";
import { StateType } from "./types.ts";
import type { ProgressState } from "./progress.ts";

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
  recentActive: boolean;
  paused: boolean;
  inflight: number;
  pendingSnapshot: number;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  /** Members' replication progress; only filled on the leader. */
  progress: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
  /** The membership, e.g. "voters=(1 2 3)&&(1 2) learners=(4)". */
  config: string;
}

export function getStatus(r: Raft): Status {
  const progress = new Map<NodeId, ProgressStatus>();
  if (r.state === StateType.Leader) {
    r.prs.visit((id, pr) => {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
        paused: pr.isPaused(),
        inflight: pr.inflights.len(),
        pendingSnapshot: pr.pendingSnapshot,
      });
    });
  }
  return {
    id: r.id,
    hardState: r.hardState(),
    softState: r.softState(),
    applied: r.raftLog.applied,
    progress,
    leadTransferee: r.leadTransferee,
    config: r.prs.config.toString(),
  };
}
