// Tracks the active configuration, per-member progress and election votes.

import { compareIds, type ConfState, type NodeId } from "./types.ts";
import { JointConfig, VoteResult } from "./quorum.ts";
import type { Progress } from "./progress.ts";

export type ProgressMap = Map<NodeId, Progress>;

/** Membership: voters (possibly joint) and learners. */
export class TrackerConfig {
  voters: JointConfig;
  /** Leave the joint config automatically once it is committed. */
  autoLeave: boolean;
  learners: Set<NodeId>;
  /**
   * Voters of the outgoing config that become learners when the joint config is left.
   * They can't be learners yet since a node can't be voter and learner at once.
   */
  learnersNext: Set<NodeId>;

  constructor(
    voters = new JointConfig(),
    autoLeave = false,
    learners = new Set<NodeId>(),
    learnersNext = new Set<NodeId>(),
  ) {
    this.voters = voters;
    this.autoLeave = autoLeave;
    this.learners = learners;
    this.learnersNext = learnersNext;
  }

  clone(): TrackerConfig {
    return new TrackerConfig(this.voters.clone(), this.autoLeave, new Set(this.learners), new Set(this.learnersNext));
  }

  toString(): string {
    let s = `voters=${this.voters}`;
    if (this.learners.size > 0) s += ` learners=(${sorted(this.learners).join(" ")})`;
    if (this.learnersNext.size > 0) s += ` learners_next=(${sorted(this.learnersNext).join(" ")})`;
    if (this.autoLeave) s += " autoleave";
    return s;
  }
}

function sorted(s: Iterable<NodeId>): NodeId[] {
  return [...s].sort(compareIds);
}

export class ProgressTracker {
  config = new TrackerConfig();
  private prs: ProgressMap = new Map();
  /** Member ids in ascending order, so iteration (and message order) is deterministic. */
  private ids: NodeId[] = [];
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  get progress(): ProgressMap {
    return this.prs;
  }

  set progress(prs: ProgressMap) {
    this.prs = prs;
    this.ids = sorted(prs.keys());
  }

  confState(): ConfState {
    return {
      voters: sorted(this.config.voters.incoming),
      votersOutgoing: sorted(this.config.voters.outgoing),
      learners: sorted(this.config.learners),
      learnersNext: sorted(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  /** A single voter and no joint config: commits need no other node. */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  /** The largest index committed by the voters' acknowledgements. */
  committed(): number {
    return this.config.voters.committedIndex((id) => this.prs.get(id)?.match);
  }

  /** Calls f for every member in id order. */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) f(ids[i], this.prs.get(ids[i])!);
  }

  /** Whether a quorum has been heard from recently (CheckQuorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.prs) if (!pr.isLearner) votes.set(id, pr.recentActive);
    return this.config.voters.voteResult(votes) === VoteResult.Won;
  }

  voterNodes(): NodeId[] {
    return this.config.voters.ids();
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records id's vote; only the first vote from each node counts. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.prs) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}
