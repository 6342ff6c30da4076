/**
 * RawNode: the application's handle on one raft member. It is synchronous and
 * single-threaded; the application owns the clock, the network and the disk.
 *
 * Usage (a brand-new single-member cluster):
 *
 *   const storage = new MemoryStorage();
 *   const rn = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage });
 *   rn.bootstrap([{ id: 1 }]);          // skip on restart: state comes from storage
 *   loop:
 *     every tick interval:   rn.tick();
 *     on a peer message:     rn.step(msg);
 *     on a client request:   rn.propose(data);   // throws ErrProposalDropped if it can't
 *     if (rn.hasReady()) {
 *       const rd = rn.ready();
 *       if leader: send rd.messages now (see below)
 *       persist rd.snapshot (storage.applySnapshot), rd.entries (storage.append),
 *         rd.hardState (storage.setHardState) — durably when rd.mustSync;
 *       if not leader: send rd.messages now, after persisting;
 *       apply rd.committedEntries in order (conf-change entries: rn.applyConfChange(decoded));
 *       serve rd.readStates once applied >= readState.index;
 *       rn.advance(rd);
 *     }
 *
 * After bootstrap the first Ready carries the membership entries; handle it
 * before campaign() (a node won't campaign with unapplied conf changes). A single
 * voter then becomes leader at once on campaign().
 *
 * Which messages may leave before the Ready is persisted (as etcd 3.4):
 * - A leader may send all of rd.messages (MsgApp, MsgSnap, MsgHeartbeat, MsgTimeoutNow,
 *   MsgReadIndexResp) in parallel with its own disk write. Its term is already
 *   durable (it persisted its vote as a candidate), and although the leader counts
 *   its unwritten entries towards commitment, the resulting commit index only
 *   reaches anyone through the next Ready, obtained after advance(), i.e. after the
 *   write completed. So the next ready() must not be taken before advance().
 * - Everyone else must persist first: a follower's MsgAppResp promises its log is
 *   durable, and a MsgVoteResp promises its vote (in rd.hardState) is.
 */

import {
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type Ready,
  type SoftState,
  StateType,
} from "./types.ts";
import type { Config } from "./config.ts";
import { Raft } from "./raft.ts";
import { asV2, isConfChangeV2 } from "./confchange.ts";
import { encodeConfChange, encodeConfChangeV2 } from "./confchange_codec.ts";
import { ErrProposalDropped, ErrStepLocalMsg, ErrStepPeerNotFound } from "./errors.ts";
import { getStatus, type Status } from "./status.ts";
import { isEmptySnap, isHardStateEqual, isLocalMsg, isResponseMsg, mustSync, newMessage } from "./util.ts";
import { ConfChangeType } from "./types.ts";

export interface Peer {
  id: NodeId;
  context?: Uint8Array;
}

export enum SnapshotStatus {
  Finish = 1,
  Failure = 2,
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftSt: SoftState;
  private prevHardSt: HardState;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftSt = this.raft.softState();
    this.prevHardSt = this.raft.hardState();
  }

  /**
   * Initializes an empty storage's membership: one AddNode conf change per peer at
   * term 1, already committed. The first Ready hands them out for persisting and applying.
   */
  bootstrap(peers: Peer[]): void {
    if (peers.length === 0) throw new Error("must provide at least one peer to Bootstrap");
    const r = this.raft;
    if (r.raftLog.storage.lastIndex() !== 0) throw new Error("can't bootstrap a nonempty Storage");
    // Nothing is persisted yet: make the first Ready carry the HardState.
    this.prevHardSt = { term: 0, vote: NONE, commit: 0 };
    r.becomeFollower(1, NONE);
    const ents = peers.map((p, i) => ({
      type: EntryType.ConfChange,
      term: 1,
      index: i + 1,
      data: encodeConfChange({ id: 0n, type: ConfChangeType.AddNode, nodeId: p.id, context: p.context }),
    }));
    r.raftLog.append(ents);
    r.raftLog.committed = ents.length;
    // Apply now so campaign() knows the voters; the application applies them again
    // from the Ready, which is idempotent for AddNode.
    for (const p of peers) {
      r.applyConfChange(asV2({ id: 0n, type: ConfChangeType.AddNode, nodeId: p.id }));
    }
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a no-op on a leader or a non-voter). */
  campaign(): void {
    this.raft.step(newMessage(MessageType.MsgHup, NONE, this.raft.id));
  }

  /** See Raft.forgetLeader: the server calls it when the leader's process is known to be gone. */
  forgetLeader(): void {
    this.raft.forgetLeader();
  }

  /** Starts an election with a pre-vote round even if PreVote is off (see Raft.preCampaign). */
  preCampaign(): void {
    this.raft.preCampaign();
  }

  /**
   * Heartbeats every follower now rather than at the next heartbeat tick (a no-op unless leader): the server calls it
   * when a peer connects again, so a restarted follower learns the leader, and the leader its log, without waiting.
   */
  heartbeat(): void {
    this.raft.step(newMessage(MessageType.MsgBeat, NONE, this.raft.id));
  }

  /** Appends data to the log via the leader; throws ErrProposalDropped if it can't be. */
  propose(data: Uint8Array): void {
    const m = newMessage(MessageType.MsgProp, NONE, this.raft.id);
    m.entries = [{ term: 0, index: 0, type: EntryType.Normal, data }];
    this.raft.step(m);
  }

  /** Proposes several entries as one message: cheaper than one propose() each. */
  proposeBatch(datas: Uint8Array[]): void {
    if (datas.length === 0) return;
    const m = newMessage(MessageType.MsgProp, NONE, this.raft.id);
    m.entries = datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data }));
    this.raft.step(m);
  }

  /** Proposes a membership change; it takes effect when applied through applyConfChange. */
  proposeConfChange(cc: ConfChange | ConfChangeV2): void {
    const m = newMessage(MessageType.MsgProp, NONE, this.raft.id);
    m.entries = [
      isConfChangeV2(cc)
        ? { term: 0, index: 0, type: EntryType.ConfChangeV2, data: encodeConfChangeV2(cc) }
        : { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) },
    ];
    this.raft.step(m);
  }

  /** Applies a committed conf change; returns the new ConfState to store with snapshots. */
  applyConfChange(cc: ConfChange | ConfChangeV2): ConfState {
    return this.raft.applyConfChange(asV2(cc));
  }

  /**
   * Feeds a message from a peer. Proposals a leader drops are swallowed: the
   * forwarding follower has no way to be told, its client times out instead.
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) throw ErrStepLocalMsg;
    if (!this.raft.prs.progress.has(m.from) && isResponseMsg(m.type)) throw ErrStepPeerNotFound;
    try {
      this.raft.step(m);
    } catch (e) {
      if (e !== ErrProposalDropped) throw e;
    }
  }

  /** Whether a snapshot raft took waits to be persisted: the next Ready hands it out. */
  hasPendingSnapshot(): boolean {
    const snap = this.raft.raftLog.unstable.snapshot;
    return snap !== undefined && !isEmptySnap(snap);
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftSt.lead || ss.raftState !== this.prevSoftSt.raftState) return true;
    const hs = r.hardState();
    if (!(hs.term === 0 && hs.vote === NONE && hs.commit === 0) && !isHardStateEqual(hs, this.prevHardSt)) return true;
    if (r.raftLog.unstable.snapshot && !isEmptySnap(r.raftLog.unstable.snapshot)) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) return true;
    return r.readStates.length !== 0;
  }

  /** Collects everything to persist, send and apply. Call advance(rd) when done with it. */
  ready(): Ready {
    const r = this.raft;
    const hs = r.hardState();
    const rd: Ready = {
      // Copy: more entries may be appended before advance(), which must only mark these stable.
      entries: r.raftLog.unstableEntries().slice(),
      committedEntries: r.raftLog.nextEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftSt.lead || ss.raftState !== this.prevSoftSt.raftState) {
      rd.softState = ss;
      this.prevSoftSt = ss;
    }
    if (!isHardStateEqual(hs, this.prevHardSt)) rd.hardState = hs;
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    rd.mustSync = mustSync(hs, this.prevHardSt, rd.entries.length);
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** Acknowledges that rd was persisted and its committed entries applied. */
  advance(rd: Ready): void {
    if (rd.hardState && !(rd.hardState.term === 0 && rd.hardState.vote === NONE && rd.hardState.commit === 0)) {
      this.prevHardSt = rd.hardState;
    }
    const n = rd.committedEntries.length;
    let applied = n > 0 ? rd.committedEntries[n - 1].index : 0;
    const snapIndex = rd.snapshot ? rd.snapshot.metadata.index : 0;
    if (applied === 0) applied = snapIndex;
    const stable = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1] : undefined;
    this.raft.advance(applied, rd.committedEntries, stable, snapIndex);
  }

  status(): Status {
    return getStatus(this.raft);
  }

  /** Asks the leader to hand leadership to `transferee` (MsgTimeoutNow once it caught up). */
  transferLeader(transferee: NodeId): void {
    const m = newMessage(MessageType.MsgTransferLeader, NONE, transferee);
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read. The answer arrives as a ReadState with rctx in a
   * later Ready; rctx must be unique per request.
   */
  readIndex(rctx: Uint8Array): void {
    const m = newMessage(MessageType.MsgReadIndex, NONE, this.raft.id);
    m.entries = [{ term: 0, index: 0, type: EntryType.Normal, data: rctx }];
    this.raft.step(m);
  }

  /** The transport failed to deliver to id: the leader stops pipelining to it. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage(MessageType.MsgUnreachable, NONE, id));
  }

  /** Tells the leader how sending a snapshot to id ended. */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    const m = newMessage(MessageType.MsgSnapStatus, NONE, id);
    m.reject = status === SnapshotStatus.Failure;
    this.raft.step(m);
  }

  /** Whether this node currently believes it leads. */
  isLeader(): boolean {
    return this.raft.state === StateType.Leader;
  }
}
