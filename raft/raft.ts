// The raft state machine: elections, replication, membership and reads. It never
// performs I/O; messages accumulate in `msgs` and are collected by RawNode.

import {
  type ConfChangeV2,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from "./types.ts";
import { resolveConfig, type ResolvedConfig } from "./config.ts";
import type { Config } from "./config.ts";
import { NO_LIMIT, RaftLog } from "./log.ts";
import { type ProgressMap, ProgressTracker, type TrackerConfig } from "./tracker.ts";
import { Inflights } from "./inflights.ts";
import { Progress, ProgressState } from "./progress.ts";
import { VoteResult } from "./quorum.ts";
import { asV2, Changer, enterJoint, leaveJoint, restoreConfState } from "./confchange.ts";
import { decodeConfChange, decodeConfChangeV2, encodeConfChangeV2 } from "./confchange_codec.ts";
import { ReadOnly, ReadOnlyOption } from "./read_only.ts";
import { ErrCompacted, ErrProposalDropped, ErrSnapshotTemporarilyUnavailable, ErrUnavailable } from "./errors.ts";
import { confStatesEqual, isConfChange, isEmptySnap, newMessage, payloadSize, voteRespMsgType } from "./util.ts";
import { Rand } from "./rand.ts";
import { discardLogger, type Logger } from "./logger.ts";

/** Marks a MsgVote sent because of a leader transfer: it overrides the recipients' leader lease. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode("CampaignTransfer");

enum CampaignType {
  PreElection,
  Election,
  Transfer,
}

function isTransferCtx(ctx: Uint8Array | undefined): boolean {
  if (!ctx || ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  private readonly maxMsgSize: number;
  private readonly maxUncommittedSize: number;
  prs: ProgressTracker;
  state: StateType = StateType.Follower;
  /** This node is a learner in the current config. */
  isLearner = false;
  msgs: Message[] = [];
  lead = NONE;
  /** Target of an ongoing leadership transfer. */
  leadTransferee = NONE;
  /**
   * Index of the latest conf change in the log. Only one conf change may be
   * pending (appended but not applied) at a time.
   */
  pendingConfIndex = 0;
  /** Payload bytes appended by this leader and not yet committed. */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  /** Ticks since the last election timeout (leaders/candidates) or since hearing from the leader. */
  electionElapsed = 0;
  /** Leader only: ticks since the last heartbeat broadcast. */
  private heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** In [electionTimeout, 2*electionTimeout); re-drawn whenever the term or role changes. */
  randomizedElectionTimeout = 0;
  private readonly disableProposalForwarding: boolean;
  private readonly rand: Rand;
  readonly logger: Logger;
  /** Reads that arrived before this leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];

  constructor(config: Config) {
    const c: ResolvedConfig = resolveConfig(config);
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady);
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize;
    this.prs = new ProgressTracker(c.maxInflightMsgs);
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.readOnly = new ReadOnly(c.readOnlyOption);
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.rand = new Rand(c.seed);
    this.logger = c.logger ?? discardLogger;

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfState(this.prs, this.raftLog.lastIndex(), confState);
    const cs = this.switchToConfig(restored.config, restored.progress);
    if (!confStatesEqual(cs, confState)) {
      throw new Error(`ConfStates not equivalent after restore: ${JSON.stringify(cs)} vs ${JSON.stringify(confState)}`);
    }
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
    this.logger.info(
      `${this.id} newRaft [peers: [${this.prs.voterNodes()}], term: ${this.term}, commit: ${this.raftLog.committed}, ` +
        `applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`,
    );
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** Queues m, stamping sender and (for all but vote traffic and proposals) the current term. */
  private send(m: Message): void {
    m.from = this.id;
    const t = m.type;
    if (
      t === MessageType.MsgVote || t === MessageType.MsgVoteResp || t === MessageType.MsgPreVote ||
      t === MessageType.MsgPreVoteResp
    ) {
      // Vote traffic carries the term it is about, which for pre-votes is not ours.
      if (m.term === 0) throw new Error(`term should be set when sending ${MessageType[t]}`);
    } else {
      if (m.term !== 0) throw new Error(`term should not be set when sending ${MessageType[t]} (was ${m.term})`);
      // Proposals and read requests are forwarded as-is: their term means nothing to the leader.
      if (t !== MessageType.MsgProp && t !== MessageType.MsgReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends the entries `to` is missing (or a snapshot if they are compacted away).
   * With sendIfEmpty false nothing is sent when there are no new entries.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to)!;
    if (pr.isPaused()) return false;
    const m = newMessage(MessageType.MsgApp, to, this.id);
    let term = 0;
    let ents: Entry[] = [];
    let compacted = false;
    try {
      term = this.raftLog.term(pr.next - 1);
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (e !== ErrCompacted && e !== ErrUnavailable) throw e;
      compacted = true;
    }
    if (!compacted && ents.length === 0 && !sendIfEmpty) return false;

    if (compacted) {
      // A follower that hasn't answered lately may be down: don't ship it a snapshot yet.
      if (!pr.recentActive) return false;
      let snap: Snapshot;
      try {
        snap = this.raftLog.snapshot();
      } catch (e) {
        if (e === ErrSnapshotTemporarilyUnavailable) return false;
        throw e;
      }
      if (isEmptySnap(snap)) throw new Error("need non-empty snapshot");
      m.type = MessageType.MsgSnap;
      m.snapshot = snap;
      pr.becomeSnapshot(snap.metadata.index);
    } else {
      m.index = pr.next - 1;
      m.logTerm = term;
      m.entries = ents;
      m.commit = this.raftLog.committed;
      const n = ents.length;
      if (n !== 0) {
        if (pr.state === ProgressState.Replicate) {
          // Pipeline: assume success and keep sending, bounded by the inflight window.
          const last = ents[n - 1].index;
          pr.optimisticUpdate(last);
          pr.inflights.add(last);
        } else if (pr.state === ProgressState.Probe) {
          pr.probeSent = true;
        } else {
          throw new Error(`${this.id} is sending append in unhandled state ${pr.state}`);
        }
      }
    }
    this.send(m);
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    // Never tell a follower to commit past what it is known to have: it might not have it.
    const commit = Math.min(this.prs.progress.get(to)!.match, this.raftLog.committed);
    const m = newMessage(MessageType.MsgHeartbeat, to, this.id);
    m.commit = commit;
    m.context = ctx;
    this.send(m);
  }

  bcastAppend(): void {
    this.prs.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.prs.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  /**
   * The application has handled a Ready: `appliedIndex` (0 if none) is now applied,
   * entries up to (stableIndex, stableTerm) and the snapshot at snapIndex are persisted.
   */
  advance(appliedIndex: number, committedEntries: Entry[], stable: Entry | undefined, snapIndex: number): void {
    if (appliedIndex > 0) {
      this.raftLog.appliedTo(appliedIndex);
      if (this.prs.config.autoLeave && appliedIndex >= this.pendingConfIndex && this.state === StateType.Leader) {
        // The joint config is committed and applied: propose leaving it. An empty V2
        // change means "leave joint".
        const ent: Entry = {
          term: 0,
          index: 0,
          type: EntryType.ConfChangeV2,
          data: encodeConfChangeV2({ transition: 0, changes: [] }),
        };
        // Either way pendingConfIndex moves past applied, so we propose once and, if the
        // append was refused, retry after the next entries apply.
        if (this.appendEntry([ent])) {
          this.logger.info(`${this.id} initiating automatic transition out of joint configuration ${this.prs.config}`);
          this.bcastAppend();
        }
        this.pendingConfIndex = this.raftLog.lastIndex();
      }
    }
    this.reduceUncommittedSize(committedEntries);
    if (stable) this.raftLog.stableTo(stable.index, stable.term);
    if (snapIndex > 0) this.raftLog.stableSnapTo(snapIndex);
  }

  /** Advances the commit index to what a quorum has acknowledged; true if it moved. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.prs.committed(), this.term);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    const last = this.raftLog.lastIndex();
    const prs = this.prs.progress;
    this.prs.visit((id, pr) => {
      const np = new Progress(last + 1, 0, new Inflights(this.prs.maxInflight), pr.isLearner, false);
      if (id === this.id) np.match = last;
      prs.set(id, np);
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  /** Appends proposals as the leader (assigning term and index); false if over the uncommitted limit. */
  appendEntry(es: Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i].term = this.term;
      es[i].index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) {
      this.logger.debug(
        `${this.id} appending new entries would exceed uncommitted entry size limit; dropping proposal`,
      );
      return false;
    }
    const newLast = this.raftLog.append(es);
    // The leader counts its own append right away; see rawnode.ts on why that is safe.
    this.prs.progress.get(this.id)!.maybeUpdate(newLast);
    this.maybeCommit();
    return true;
  }

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage(MessageType.MsgHup, NONE, this.id));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage(MessageType.MsgCheckQuorum, NONE, this.id));
      // A transfer that didn't finish within an election timeout has failed.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage(MessageType.MsgBeat, NONE, this.id));
    }
  }

  /**
   * A follower drops its leader, keeping its term and vote (etcd raft's MsgForgetLeader): it then grants pre-votes and
   * votes at once instead of honouring the leader's lease for an election timeout. For when something outside raft
   * knows the leader is gone; a live leader's next heartbeat restores it. Refused with lease-based reads, which trust
   * that lease; a no-op on a leader or candidate.
   */
  forgetLeader(): void {
    if (this.state !== StateType.Follower || this.lead === NONE) return;
    if (this.readOnly.option === ReadOnlyOption.LeaseBased) {
      this.logger.warn(`${this.id} ignoring forget leader: reads are lease-based`);
      return;
    }
    this.logger.info(`${this.id} forgetting leader ${this.lead} at term ${this.term}`);
    this.lead = NONE;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error("invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error("invalid transition [leader -> pre-candidate]");
    // A pre-candidate changes neither term nor vote: that's the whole point of PreVote.
    this.prs.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error("invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    // Followers start in probe; our own progress is known to be complete.
    this.prs.progress.get(this.id)!.becomeReplicate();
    // Any conf change in the uncommitted tail counts as pending: don't allow another on top.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An entry of our own term, so older entries can commit (§5.4.2) and reads can be served.
    const empty: Entry = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
    if (!this.appendEntry([empty])) throw new Error("empty entry was dropped");
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  private campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      // Pre-votes ask about the term we would move to, without moving.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, voteRespMsgType(voteMsg), true) === VoteResult.Won) {
      // Single voter: we won on our own vote.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.prs.voterNodes()) {
      if (id === this.id) continue;
      const m = newMessage(voteMsg, id, this.id);
      m.term = term;
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === CampaignType.Transfer) m.context = CAMPAIGN_TRANSFER;
      this.send(m);
    }
  }

  private poll(id: NodeId, t: MessageType, granted: boolean): VoteResult {
    this.logger.info(
      `${this.id} received ${MessageType[t]}${granted ? "" : " rejection"} from ${id} at term ${this.term}`,
    );
    this.prs.recordVote(id, granted);
    return this.prs.tallyVotes().result;
  }

  /** Feeds one message (local or from a peer) to the state machine. */
  step(m: Message): void {
    // Term handling first (§5.1): higher terms demote us, lower ones are mostly ignored.
    if (m.term === 0) {
      // Local message.
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = isTransferCtx(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        // We heard from a live leader within the minimum election timeout: ignore the
        // (possibly disruptive) candidate unless the leader itself asked for it.
        if (!force && inLease) {
          this.logger.info(
            `${this.id} ignored ${MessageType[m.type]} from ${m.from} at term ${this.term}: lease not expired`,
          );
          return;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we bump it when the real election starts.
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] received a ${MessageType[m.type]} with higher term from ${m.from}`,
        );
        if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
          this.becomeFollower(m.term, m.from);
        } else {
          this.becomeFollower(m.term, NONE);
        }
      }
    } else if (m.term < this.term) {
      const fromLeader = m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp;
      if (fromLeader && (this.checkQuorum || this.preVote || !this.promotable())) {
        // A stale leader (e.g. after a partition) would otherwise never learn of the new
        // term when our vote requests are suppressed by its followers' lease or PreVote,
        // or when we can't campaign at all (a learner, or a member that hasn't caught up
        // with its own addition): we would be stranded at our higher term.
        // Any response with our higher term makes it step down.
        this.send(newMessage(MessageType.MsgAppResp, m.from, this.id));
      } else if (m.type === MessageType.MsgPreVote || m.type === MessageType.MsgVote) {
        // Reject explicitly so the candidate learns our term and doesn't wait forever: we
        // may be a voter it needs that never asks it (we don't know it is a member yet).
        const r = newMessage(voteRespMsgType(m.type), m.from, this.id);
        r.term = this.term;
        r.reject = true;
        this.send(r);
      } else {
        this.logger.info(`${this.id} [term: ${this.term}] ignored a ${MessageType[m.type]} with lower term ${m.term}`);
      }
      return;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup();
        break;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        // We can vote for whoever we already voted for, or anyone if we haven't voted and
        // know no leader; a pre-vote for a future term is always allowed.
        const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term);
        const r = newMessage(voteRespMsgType(m.type), m.from, this.id);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // Answer with the message's term: for pre-votes ours is older and would read as stale.
          r.term = m.term;
          this.send(r);
          if (m.type === MessageType.MsgVote) {
            // Persisted through Ready's HardState before the response leaves this node.
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          r.term = this.term;
          r.reject = true;
          this.send(r);
        }
        break;
      }
      default:
        if (this.state === StateType.Leader) this.stepLeader(m);
        else if (this.state === StateType.Follower) this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  /**
   * Starts a pre-vote campaign whatever the configuration says (etcd's PreVote is off by default): a failed one moves
   * no term, so a member that campaigns on outside knowledge (see forgetLeader) and loses, its log behind another's,
   * leaves that one free to campaign next.
   */
  preCampaign(): void {
    this.hup(CampaignType.PreElection);
  }

  private hup(t = this.preVote ? CampaignType.PreElection : CampaignType.Election): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    // Committed but unapplied conf changes might remove us or change the quorum:
    // wait until they're applied.
    if (this.raftLog.committed > this.raftLog.applied) {
      const ents = this.raftLog.slice(this.raftLog.applied + 1, this.raftLog.committed + 1, NO_LIMIT);
      for (const e of ents) {
        if (isConfChange(e)) {
          this.logger.warn(`${this.id} cannot campaign at term ${this.term}: pending configuration changes`);
          return;
        }
      }
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return;
      case MessageType.MsgCheckQuorum: {
        const self = this.prs.progress.get(this.id);
        if (self) self.recentActive = true;
        if (!this.prs.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        this.prs.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      }
      case MessageType.MsgProp:
        this.propose(m);
        return;
      case MessageType.MsgReadIndex:
        if (this.prs.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
        } else if (!this.committedEntryInCurrentTerm()) {
          // Our commit index may be stale until an entry of our term commits (§6.4): hold the read.
          this.pendingReadIndexMessages.push(m);
        } else {
          this.sendReadIndexResponse(m);
        }
        return;
    }

    const pr = this.prs.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.MsgAppResp:
        pr.recentActive = true;
        if (m.reject) {
          if (pr.maybeDecrTo(m.index, m.rejectHint)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
        } else {
          const oldPaused = pr.isPaused();
          if (pr.maybeUpdate(m.index)) {
            if (pr.state === ProgressState.Probe) {
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
              // The follower caught up past the snapshot by other means: resume appends.
              pr.becomeProbe();
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Replicate) {
              pr.inflights.freeLE(m.index);
            }
            if (this.maybeCommit()) {
              this.releasePendingReadIndexMessages();
              this.bcastAppend();
            } else if (oldPaused) {
              // It was paused, so it may be missing entries and we owe it an update.
              this.sendAppend(m.from);
            }
            // Flush whatever the inflight window now allows.
            while (this.maybeSendAppend(m.from, false)) { /* keep sending */ }
            if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
              this.sendTimeoutNow(m.from);
            }
          }
        }
        break;
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        // Free one slot so a stuck window (lost acks) can make progress.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
        if (this.readOnly.option !== ReadOnlyOption.Safe || !m.context || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || this.prs.config.voters.voteResult(acks) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        break;
      }
      case MessageType.MsgSnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        // On failure forget the snapshot so the next probe can trigger a fresh one.
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing: the snapshot may still be applying.
        pr.probeSent = true;
        break;
      case MessageType.MsgUnreachable:
        // Optimistic sends are probably lost: fall back to probing.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        break;
      case MessageType.MsgTransferLeader: {
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        // The transfer must finish within an election timeout.
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        break;
      }
    }
  }

  private propose(m: Message): void {
    if (m.entries.length === 0) throw new Error(`${this.id} stepped empty MsgProp`);
    // We were removed from the config but still lead: don't accept new work.
    if (!this.prs.progress.has(this.id)) throw ErrProposalDropped;
    if (this.leadTransferee !== NONE) throw ErrProposalDropped;
    // appendEntry stamps term and index into the entries: never into objects a
    // transport might still hold (a duplicated forward would rewrite our log).
    if (m.from !== this.id) {
      m.entries = m.entries.map((e) => ({ term: 0, index: 0, type: e.type, data: e.data }));
    }
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i];
      if (!isConfChange(e)) continue;
      const cc = e.type === EntryType.ConfChange ? asV2(decodeConfChange(e.data)) : decodeConfChangeV2(e.data);
      const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
      const alreadyJoint = this.prs.config.voters.isJoint();
      const wantsLeaveJoint = cc.changes.length === 0;
      let refused = "";
      if (alreadyPending) {
        refused =
          `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
      } else if (alreadyJoint && !wantsLeaveJoint) {
        refused = "must transition out of joint config first";
      } else if (!alreadyJoint && wantsLeaveJoint) {
        refused = "not in joint state; refusing empty conf change";
      }
      if (refused !== "") {
        // Keep the slot (the proposer waits on that index) but make it a no-op.
        this.logger.info(`${this.id} ignoring conf change at config ${this.prs.config}: ${refused}`);
        m.entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(m.entries)) throw ErrProposalDropped;
    this.bcastAppend();
  }

  private stepCandidate(m: Message): void {
    const myVoteRespType = this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgProp:
        throw ErrProposalDropped;
      // A leader of our term exists (terms are equal here): follow it.
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        break;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case myVoteRespType: {
        const res = this.poll(m.from, m.type, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign(CampaignType.Election);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          // A rejection with a higher term already demoted us above; this keeps our term.
          this.becomeFollower(this.term, NONE);
        }
        break;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MsgProp:
        if (this.lead === NONE || this.disableProposalForwarding) throw ErrProposalDropped;
        m.to = this.lead;
        this.send(m);
        break;
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        break;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case MessageType.MsgTransferLeader:
        if (this.lead === NONE) return;
        m.to = this.lead;
        this.send(m);
        break;
      case MessageType.MsgTimeoutNow:
        // The leader asks us to take over: campaign now, skipping PreVote and leases.
        if (this.promotable()) this.campaign(CampaignType.Transfer);
        break;
      case MessageType.MsgReadIndex:
        if (this.lead === NONE) return;
        m.to = this.lead;
        this.send(m);
        break;
      case MessageType.MsgReadIndexResp:
        if (m.entries.length !== 1) return;
        this.readStates.push({ index: m.index, requestCtx: m.entries[0].data });
        break;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to committed already matches; tell the leader where we are.
      const r = newMessage(MessageType.MsgAppResp, m.from, this.id);
      r.index = this.raftLog.committed;
      this.send(r);
      return;
    }
    const last = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    const r = newMessage(MessageType.MsgAppResp, m.from, this.id);
    if (last >= 0) {
      r.index = last;
    } else {
      // Hint our last index so the leader can skip back in one step.
      r.index = m.index;
      r.reject = true;
      r.rejectHint = this.raftLog.lastIndex();
    }
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    const r = newMessage(MessageType.MsgHeartbeatResp, m.from, this.id);
    r.context = m.context;
    this.send(r);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot!;
    const r = newMessage(MessageType.MsgAppResp, m.from, this.id);
    if (this.restore(s)) {
      this.logger.info(`${this.id} restored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
      r.index = this.raftLog.lastIndex();
    } else {
      r.index = this.raftLog.committed;
    }
    this.send(r);
  }

  /** Installs a snapshot from the leader; false if it is stale or we already have it. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a leader sends snapshots, so receiving one as a leader means a term bug.
      this.logger.warn(`${this.id} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id) && !cs.votersOutgoing.includes(this.id)) {
      this.logger.warn(`${this.id} attempted to restore snapshot but it is not in the ConfState`);
      return false;
    }
    // We already have the snapshot's entry: just commit up to it, keeping our log.
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.prs = new ProgressTracker(this.prs.maxInflight);
    const restored = restoreConfState(this.prs, this.raftLog.lastIndex(), cs);
    const got = this.switchToConfig(restored.config, restored.progress);
    if (!confStatesEqual(got, cs)) throw new Error("ConfStates not equivalent after restoring snapshot");
    const pr = this.prs.progress.get(this.id)!;
    pr.maybeUpdate(pr.next - 1);
    return true;
  }

  /** Whether this node may become leader: it is a voter of the current config. */
  promotable(): boolean {
    const pr = this.prs.progress.get(this.id);
    return pr !== undefined && !pr.isLearner;
  }

  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.prs, this.raftLog.lastIndex());
    let res;
    if (leaveJoint(cc)) {
      res = changer.leaveJoint();
    } else {
      const j = enterJoint(cc);
      res = j.ok ? changer.enterJoint(j.autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(res.config, res.progress);
  }

  /** Makes cfg/prs current and reacts as leader (new quorum may commit, new members need appends). */
  private switchToConfig(cfg: TrackerConfig, prs: ProgressMap): ConfState {
    this.prs.config = cfg;
    this.prs.progress = prs;
    this.logger.info(`${this.id} switched to configuration ${this.prs.config}`);
    const cs = this.prs.confState();
    const pr = prs.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if (this.state !== StateType.Leader) return cs;
    if (pr === undefined || this.isLearner) {
      // Removed or demoted while leading. The change is committed (it is being applied),
      // so stepping down is safe and lets the remaining voters elect a real member.
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      this.prs.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !prs.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new Error(
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.intn(this.electionTimeout);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage(MessageType.MsgTimeoutNow, to, this.id));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  /** Delivers a read result: locally as a ReadState, or to the follower that asked. */
  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.entries[0].data });
      return;
    }
    const r = newMessage(MessageType.MsgReadIndexResp, req.from, this.id);
    r.index = readIndex;
    r.entries = req.entries;
    this.send(r);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnly.option === ReadOnlyOption.Safe) {
      this.readOnly.addRequest(this.raftLog.committed, m);
      // Our own ack; a single-voter-majority config is handled before we get here.
      this.readOnly.recvAck(this.id, m.entries[0].data);
      this.bcastHeartbeatWithCtx(m.entries[0].data);
    } else {
      this.respondToReadIndex(m, this.raftLog.committed);
    }
  }

  private releasePendingReadIndexMessages(): void {
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private increaseUncommittedSize(ents: Entry[]): boolean {
    let s = 0;
    for (let i = 0; i < ents.length; i++) s += payloadSize(ents[i]);
    // Always admit at least one batch, however large, or nothing could ever be proposed.
    if (this.uncommittedSize > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  private reduceUncommittedSize(ents: Entry[]): void {
    if (this.uncommittedSize === 0) return;
    let s = 0;
    for (let i = 0; i < ents.length; i++) s += payloadSize(ents[i]);
    // Entries of earlier terms (not counted) may be included: clamp at zero.
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }
}
