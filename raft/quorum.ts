// Quorum arithmetic for majority and joint (two-majority) configurations.
import { compareIds, type NodeId } from "./types.ts";

export enum VoteResult {
  /** Neither won nor lost yet: some votes are missing. */
  Pending = 1,
  Lost = 2,
  Won = 3,
}

/** Answers a voter's acknowledged index; absent voters answer 0. */
export type AckedIndexer = (id: NodeId) => number | undefined;

/** Reused by committedIndex to avoid an allocation per commit check. */
let scratch: number[] = [];

/**
 * The highest index acknowledged by a majority of `voters`. An empty config
 * returns MAX_SAFE_INTEGER so that, joined with a real config, it never limits.
 */
export function majorityCommittedIndex(voters: Set<NodeId>, acked: AckedIndexer): number {
  const n = voters.size;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  if (scratch.length < n) scratch = new Array(n).fill(0);
  let i = 0;
  for (const id of voters) scratch[i++] = acked(id) ?? 0;
  // Insertion sort, descending: configs are tiny and this allocates nothing.
  for (let a = 1; a < n; a++) {
    const v = scratch[a];
    let b = a - 1;
    while (b >= 0 && scratch[b] < v) {
      scratch[b + 1] = scratch[b];
      b--;
    }
    scratch[b + 1] = v;
  }
  // The (n/2+1)-th largest value is held by a majority.
  return scratch[Math.floor(n / 2)];
}

/** Tallies votes; a missing entry is a vote not yet cast. An empty config wins (joint-config convention). */
export function majorityVoteResult(voters: Set<NodeId>, votes: Map<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  let yes = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) yes++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (yes >= q) return VoteResult.Won;
  if (yes + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** The incoming and outgoing voter sets; outgoing is empty unless in a joint config. */
export class JointConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;

  constructor(incoming = new Set<NodeId>(), outgoing = new Set<NodeId>()) {
    this.incoming = incoming;
    this.outgoing = outgoing;
  }

  clone(): JointConfig {
    return new JointConfig(new Set(this.incoming), new Set(this.outgoing));
  }

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  /** Every voter of either half, sorted, without duplicates. */
  ids(): NodeId[] {
    const s = new Set(this.incoming);
    for (const id of this.outgoing) s.add(id);
    return [...s].sort(compareIds);
  }

  has(id: NodeId): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  /** Committed under joint consensus: the smaller of both halves' commit indexes. */
  committedIndex(acked: AckedIndexer): number {
    const a = majorityCommittedIndex(this.incoming, acked);
    const b = majorityCommittedIndex(this.outgoing, acked);
    return a < b ? a : b;
  }

  /** Won only if both halves win; lost if either loses. */
  voteResult(votes: Map<NodeId, boolean>): VoteResult {
    const r1 = majorityVoteResult(this.incoming, votes);
    const r2 = majorityVoteResult(this.outgoing, votes);
    if (r1 === r2) return r1;
    if (r1 === VoteResult.Lost || r2 === VoteResult.Lost) return VoteResult.Lost;
    return VoteResult.Pending;
  }

  toString(): string {
    const fmt = (s: Set<NodeId>) => `(${[...s].sort(compareIds).join(" ")})`;
    return this.isJoint() ? `${fmt(this.incoming)}&&${fmt(this.outgoing)}` : fmt(this.incoming);
  }
}
