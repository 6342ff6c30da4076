// Membership changes: computes the next TrackerConfig and ProgressMap from the
// current ones, for single-step changes and for entering/leaving joint consensus.

import {
  type ConfChange,
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  type ConfState,
  type NodeId,
  NONE,
} from "./types.ts";
import { Inflights } from "./inflights.ts";
import { Progress } from "./progress.ts";
import type { ProgressMap, ProgressTracker } from "./tracker.ts";
import { TrackerConfig } from "./tracker.ts";

export interface ChangeResult {
  config: TrackerConfig;
  progress: ProgressMap;
}

/** What a Changer reads: the current config and progress (a ProgressTracker fits). */
export interface TrackerView {
  config: TrackerConfig;
  progress: ProgressMap;
  maxInflight: number;
}

export class Changer {
  private readonly tracker: TrackerView;
  private readonly lastIndex: number;

  constructor(tracker: TrackerView, lastIndex: number) {
    this.tracker = tracker;
    this.lastIndex = lastIndex;
  }

  /** Enters a joint config: the current voters become the outgoing half, ccs shape the incoming one. */
  enterJoint(autoLeave: boolean, ccs: ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.isJoint()) throw new Error("config is already joint");
    if (config.voters.incoming.size === 0) throw new Error("can't make a zero-voter config joint");
    config.voters.outgoing = new Set(config.voters.incoming);
    this.apply(config, progress, ccs);
    config.autoLeave = autoLeave;
    return checkAndReturn(config, progress);
  }

  /** Leaves a joint config: drops the outgoing half and demotes learnersNext to learners. */
  leaveJoint(): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (!config.voters.isJoint()) throw new Error("can't leave a non-joint config");
    for (const id of config.learnersNext) {
      config.learners.add(id);
      progress.get(id)!.isLearner = true;
    }
    config.learnersNext = new Set();
    for (const id of config.voters.outgoing) {
      if (!config.voters.incoming.has(id) && !config.learners.has(id)) progress.delete(id);
    }
    config.voters.outgoing = new Set();
    config.autoLeave = false;
    return checkAndReturn(config, progress);
  }

  /** Applies changes that alter at most one voter, so any old and new majority overlap. */
  simple(ccs: ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.isJoint()) throw new Error("can't apply simple config change in joint config");
    this.apply(config, progress, ccs);
    if (symdiff(this.tracker.config.voters.incoming, config.voters.incoming) > 1) {
      throw new Error("more than one voter changed without entering joint config");
    }
    return checkAndReturn(config, progress);
  }

  private apply(config: TrackerConfig, progress: ProgressMap, ccs: ConfChangeSingle[]): void {
    for (const cc of ccs) {
      // Id 0 is how etcd expresses "no node"; ignore rather than fail.
      if (cc.nodeId === NONE) continue;
      switch (cc.type) {
        case ConfChangeType.AddNode:
          this.makeVoter(config, progress, cc.nodeId);
          break;
        case ConfChangeType.AddLearnerNode:
          this.makeLearner(config, progress, cc.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          remove(config, progress, cc.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          break;
        default:
          throw new Error(`unexpected conf type ${cc.type}`);
      }
    }
    if (config.voters.incoming.size === 0) throw new Error("removed all voters");
  }

  private makeVoter(config: TrackerConfig, progress: ProgressMap, id: NodeId): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, false);
      return;
    }
    pr.isLearner = false;
    config.learners.delete(id);
    config.learnersNext.delete(id);
    config.voters.incoming.add(id);
  }

  private makeLearner(config: TrackerConfig, progress: ProgressMap, id: NodeId): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, true);
      return;
    }
    if (pr.isLearner) return;
    // Remove as voter first (keeps the progress), then re-add as learner.
    remove(config, progress, id);
    progress.set(id, pr);
    // Still a voter in the outgoing half: it can only become a learner when that half goes.
    if (config.voters.outgoing.has(id)) {
      config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      config.learners.add(id);
    }
  }

  private initProgress(config: TrackerConfig, progress: ProgressMap, id: NodeId, isLearner: boolean): void {
    if (isLearner) config.learners.add(id);
    else config.voters.incoming.add(id);
    // Probing starts at the leader's last index; recentActive so CheckQuorum doesn't
    // count a brand-new member against the leader before it could answer.
    const next = Math.max(1, this.lastIndex);
    progress.set(id, new Progress(next, 0, new Inflights(this.tracker.maxInflight), isLearner, true));
  }

  private checkAndCopy(): ChangeResult {
    const config = this.tracker.config.clone();
    const progress: ProgressMap = new Map();
    for (const [id, pr] of this.tracker.progress) progress.set(id, pr.clone());
    return checkAndReturn(config, progress);
  }
}

function remove(config: TrackerConfig, progress: ProgressMap, id: NodeId): void {
  if (!progress.has(id)) return;
  config.voters.incoming.delete(id);
  config.learners.delete(id);
  config.learnersNext.delete(id);
  // A voter of the outgoing half keeps its progress until the joint config is left.
  if (!config.voters.outgoing.has(id)) progress.delete(id);
}

function symdiff(l: Set<NodeId>, r: Set<NodeId>): number {
  let n = 0;
  for (const id of l) if (!r.has(id)) n++;
  for (const id of r) if (!l.has(id)) n++;
  return n;
}

function checkInvariants(config: TrackerConfig, progress: ProgressMap): void {
  for (const ids of [config.voters.ids(), config.learners, config.learnersNext]) {
    for (const id of ids) if (!progress.has(id)) throw new Error(`no progress for ${id}`);
  }
  for (const id of config.learnersNext) {
    if (!config.voters.outgoing.has(id)) throw new Error(`${id} is in LearnersNext, but not Voters[1]`);
    if (progress.get(id)!.isLearner) throw new Error(`${id} is in LearnersNext, but is already marked as learner`);
  }
  for (const id of config.learners) {
    if (config.voters.outgoing.has(id)) throw new Error(`${id} is in Learners and Voters[1]`);
    if (config.voters.incoming.has(id)) throw new Error(`${id} is in Learners and Voters[0]`);
    if (!progress.get(id)!.isLearner) throw new Error(`${id} is in Learners, but is not marked as learner`);
  }
  if (!config.voters.isJoint()) {
    if (config.learnersNext.size > 0) throw new Error("LearnersNext must be empty when not joint");
    if (config.autoLeave) throw new Error("AutoLeave must be false when not joint");
  }
}

function checkAndReturn(config: TrackerConfig, progress: ProgressMap): ChangeResult {
  checkInvariants(config, progress);
  return { config, progress };
}

/**
 * Rebuilds a config from a ConfState by replaying it as changes: the outgoing
 * voters first (one at a time), then entering the joint config if there is one.
 */
export function restoreConfState(tracker: ProgressTracker, lastIndex: number, cs: ConfState): ChangeResult {
  const incoming: ConfChangeSingle[] = [];
  const outgoing: ConfChangeSingle[] = [];
  for (const id of cs.votersOutgoing) outgoing.push({ type: ConfChangeType.AddNode, nodeId: id });
  // In a joint config the incoming half starts as a copy of the outgoing one.
  for (const id of cs.votersOutgoing) incoming.push({ type: ConfChangeType.RemoveNode, nodeId: id });
  for (const id of cs.voters) incoming.push({ type: ConfChangeType.AddNode, nodeId: id });
  for (const id of cs.learners) incoming.push({ type: ConfChangeType.AddLearnerNode, nodeId: id });
  for (const id of cs.learnersNext) incoming.push({ type: ConfChangeType.AddLearnerNode, nodeId: id });

  let state: TrackerView = { config: tracker.config, progress: tracker.progress, maxInflight: tracker.maxInflight };
  const step = (r: ChangeResult) => {
    state = { config: r.config, progress: r.progress, maxInflight: tracker.maxInflight };
  };
  if (outgoing.length === 0) {
    for (const cc of incoming) step(new Changer(state, lastIndex).simple([cc]));
  } else {
    for (const cc of outgoing) step(new Changer(state, lastIndex).simple([cc]));
    step(new Changer(state, lastIndex).enterJoint(cs.autoLeave, incoming));
  }
  return { config: state.config, progress: state.progress };
}

/** Whether cc is a ConfChangeV2 (as opposed to a single-step ConfChange). */
export function isConfChangeV2(cc: ConfChange | ConfChangeV2): cc is ConfChangeV2 {
  return (cc as ConfChangeV2).changes !== undefined;
}

/** Views any conf change as a V2 one; a ConfChange is a V2 with one change and Auto transition. */
export function asV2(cc: ConfChange | ConfChangeV2): ConfChangeV2 {
  if (isConfChangeV2(cc)) return cc;
  return {
    transition: ConfChangeTransition.Auto,
    changes: [{ type: cc.type, nodeId: cc.nodeId }],
    context: cc.context,
  };
}

/**
 * Whether cc must go through a joint config, and if so whether to leave it
 * automatically. Auto uses joint consensus only when more than one change is asked for.
 */
export function enterJoint(cc: ConfChangeV2): { autoLeave: boolean; ok: boolean } {
  if (cc.transition !== ConfChangeTransition.Auto || cc.changes.length > 1) {
    const autoLeave = cc.transition === ConfChangeTransition.Auto ||
      cc.transition === ConfChangeTransition.JointImplicit;
    return { autoLeave, ok: true };
  }
  return { autoLeave: false, ok: false };
}

/** The empty V2 change is the signal to leave a joint config. */
export function leaveJoint(cc: ConfChangeV2): boolean {
  return cc.transition === ConfChangeTransition.Auto && cc.changes.length === 0;
}
