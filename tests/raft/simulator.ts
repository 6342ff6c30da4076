// Deterministic cluster simulator: RawNodes over MemoryStorage ("disk"), a seeded
// network that drops, delays, duplicates and reorders, partitions, crashes that
// lose everything not persisted from a Ready, and membership changes. Safety is
// checked after every step; a final healed phase checks liveness.

import { RawNode, SnapshotStatus } from "../../raft/rawnode.ts";
import { MemoryStorage } from "../../raft/storage.ts";
import { Rand } from "../../raft/rand.ts";
import { ErrProposalDropped } from "../../raft/errors.ts";
import { ctxKey, ReadOnlyOption } from "../../raft/read_only.ts";
import { decodeConfChange, decodeConfChangeV2 } from "../../raft/confchange_codec.ts";
import {
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type Ready,
  StateType,
} from "../../raft/types.ts";

/**
 * The raft implementation under test. Mutation testing loads a patched copy of raft/
 * (see mutations.ts); error identity matters, so everything comes from one copy.
 */
export interface RaftLib {
  RawNode: typeof RawNode;
  MemoryStorage: typeof MemoryStorage;
  ErrProposalDropped: Error;
  decodeConfChange: typeof decodeConfChange;
  decodeConfChangeV2: typeof decodeConfChangeV2;
}

export const defaultLib: RaftLib = { RawNode, MemoryStorage, ErrProposalDropped, decodeConfChange, decodeConfChangeV2 };

/** Loads a RaftLib from a directory laid out like raft/ (a URL ending in "/"). */
export async function loadLib(root: URL): Promise<RaftLib> {
  const [rawnode, storage, errors, codec] = await Promise.all(
    ["rawnode.ts", "storage.ts", "errors.ts", "confchange_codec.ts"].map((f) => import(new URL(f, root).href)),
  );
  return {
    RawNode: rawnode.RawNode,
    MemoryStorage: storage.MemoryStorage,
    ErrProposalDropped: errors.ErrProposalDropped,
    decodeConfChange: codec.decodeConfChange,
    decodeConfChangeV2: codec.decodeConfChangeV2,
  };
}

export interface SimOptions {
  lib?: RaftLib;
  /**
   * A broken server, for mutation testing: followers send (acknowledge) before their
   * Ready is persisted, which rawnode.ts forbids.
   */
  sendBeforePersist?: boolean;
}

export interface SimResult {
  ok: boolean;
  seed: number;
  error?: string;
  stats: {
    steps: number;
    applied: number;
    elections: number;
    crashes: number;
    confChanges: number;
    snapshots: number;
    reads: number;
  };
}

interface Node {
  id: number;
  storage: MemoryStorage;
  rn: RawNode | undefined; // undefined while crashed
  applied: number;
  hash: number; // running hash of applied entries: the "state machine"
  confState: ConfState;
  removed: boolean;
  /** Highest term this node heard of or reached by election: its term may never exceed it. */
  termSeen: number;
  /** Commit index of its last persisted HardState (or snapshot). */
  commitSeen: number;
  /** When a crashed node comes back: crashes outnumber the random restarts. */
  restartAt: number;
}

/** An entry known committed, and the lowest term of anyone who knew it: it was committed at or before that term. */
interface Committed {
  key: string;
  term: number;
  knownAt: number;
}

interface InFlight {
  at: number;
  seq: number;
  m: Message;
}

class SimError extends Error {}

const enc = new TextEncoder();

function entryKey(e: Entry): string {
  let s = `${e.term}|${e.type}|`;
  for (let i = 0; i < e.data.length; i++) s += String.fromCharCode(e.data[i]);
  return s;
}

function mixHash(h: number, key: string): number {
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function hashBytes(h: number): Uint8Array {
  return enc.encode(String(h));
}

export class Simulator {
  private readonly rand: Rand;
  private readonly nodes = new Map<number, Node>();
  private queue: InFlight[] = [];
  private seq = 0;
  private now = 0;
  private nextSpare: number;
  private partition: Set<number> | undefined;
  private readonly dropP: number;
  private readonly dupP: number;
  private readonly maxDelay: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  /** Chance of cutting a leader off at a moment figure 8 is made of; 0 for a third of the seeds. */
  private readonly isolateP: number;
  private readonly leaseReads: boolean;
  /** Partitions that outlast elections and leases; a third of the seeds. */
  private readonly longPartitions: boolean;
  /** maxCommitted at the end of each step. */
  private readonly commitHistory: number[] = [];
  private chaos = false;
  private cutOff: Node | undefined;
  private propCounter = 0;
  // Global knowledge for the safety checks, kept across crashes.
  private readonly committedAt = new Map<number, Committed>();
  private maxCommitted = 0;
  private readonly hashAt = new Map<number, number>(); // index -> state hash after applying it
  private readonly entryAt = new Map<string, string>(); // "index/term" -> entry key
  private readonly leaderOf = new Map<number, number>(); // term -> leader id
  private readonly removalsRequested = new Set<number>();
  private readonly initialIds: number[];
  private readonly stats = { steps: 0, applied: 0, elections: 0, crashes: 0, confChanges: 0, snapshots: 0, reads: 0 };
  /** Pending reads: context -> index the answer must reach (see checkRead). */
  private readonly reads = new Map<string, number>();

  private readonly lib: RaftLib;
  private readonly sendBeforePersist: boolean;

  constructor(readonly seed: number, opts: SimOptions = {}) {
    this.lib = opts.lib ?? defaultLib;
    this.sendBeforePersist = opts.sendBeforePersist ?? false;
    this.rand = new Rand(seed * 2654435761 + 12345);
    const r = this.rand;
    const n = r.intn(2) === 0 ? 3 : 5;
    this.dropP = r.intn(4) * 0.03;
    this.dupP = r.intn(3) * 0.03;
    this.maxDelay = 1 + r.intn(3);
    this.preVote = r.intn(2) === 0;
    this.checkQuorum = r.intn(2) === 0;
    // One entry per message half the time: it opens the windows figure 8 is about.
    this.maxSizePerMsg = [0, 0, 0, 64, 1024, 1 << 20][r.intn(6)];
    this.maxInflight = 1 + r.intn(8);
    this.isolateP = [0, 0.15, 0.4][r.intn(3)];
    this.leaseReads = this.checkQuorum && r.intn(2) === 0;
    this.longPartitions = r.intn(3) === 0;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    this.initialIds = ids;
    this.nextSpare = n + 1;
    for (const id of ids) {
      const node = this.newNode(id);
      node.rn!.bootstrap(ids.map((x) => ({ id: BigInt(x) })));
      node.termSeen = node.rn!.raft.term;
    }
  }

  private config(id: number, storage: MemoryStorage) {
    return {
      id: BigInt(id),
      electionTick: 10,
      heartbeatTick: 2,
      storage,
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      readOnlyOption: this.leaseReads ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflight,
      seed: this.seed * 31 + id * 7 + this.stats.crashes,
    };
  }

  private newNode(id: number): Node {
    const storage = new this.lib.MemoryStorage();
    const node: Node = {
      id,
      storage,
      rn: new this.lib.RawNode(this.config(id, storage)),
      applied: 0,
      hash: 0,
      confState: storage.initialState().confState,
      removed: false,
      termSeen: 0,
      commitSeen: 0,
      restartAt: 0,
    };
    this.nodes.set(id, node);
    return node;
  }

  private fail(msg: string): never {
    throw new SimError(`t=${this.now}: ${msg}`);
  }

  // --- network -----------------------------------------------------------

  private connected(a: number, b: number): boolean {
    return !this.partition || this.partition.has(a) === this.partition.has(b);
  }

  private send(msgs: Message[], lossy: boolean): void {
    for (let m of msgs) {
      if (m.type === MessageType.MsgSnap) m = this.mergedSnapshot(m);
      if (lossy && this.rand.intn(1000) < this.dropP * 1000) {
        this.reportFailure(m);
        continue;
      }
      this.queue.push({ at: this.now + this.rand.intn(this.maxDelay + 1), seq: this.seq++, m });
      if (lossy && this.rand.intn(1000) < this.dupP * 1000) {
        this.queue.push({ at: this.now + this.rand.intn(this.maxDelay + 2), seq: this.seq++, m });
      }
    }
  }

  private deliver(): void {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.queue) (f.at <= this.now ? due : later).push(f);
    this.queue = later;
    due.sort((a, b) => a.at - b.at || a.seq - b.seq);
    for (const { m } of due) {
      const to = this.nodes.get(Number(m.to));
      if (!to || !to.rn || to.removed || !this.connected(Number(m.from), Number(m.to))) {
        this.reportFailure(m);
        continue;
      }
      // A pre-vote's term is one nobody holds yet: hearing it is no licence to adopt it.
      const prospective = m.type === MessageType.MsgPreVote || (m.type === MessageType.MsgPreVoteResp && !m.reject);
      if (!prospective) to.termSeen = Math.max(to.termSeen, m.term);
      try {
        // A shallow copy: raft may rewrite fields of a message it forwards.
        to.rn.step({ ...m });
      } catch (e) {
        if ((e as Error).message.includes("peer not found")) continue;
        throw e;
      }
      this.checkTerm(to);
      // An old-term entry just reached one more follower: a buggy leader may count it as
      // committed now, and only a new leader overwriting it would show.
      const r = to.rn?.raft;
      if (
        m.type === MessageType.MsgAppResp && !m.reject && r && r.state === StateType.Leader &&
        r.raftLog.termOrZero(m.index) < r.term && this.chaos && this.rand.intn(1000) < this.isolateP * 1000
      ) this.cutOff = to;
      if (m.type === MessageType.MsgSnap) {
        this.nodes.get(Number(m.from))?.rn?.reportSnapshot(m.to, SnapshotStatus.Finish);
      }
    }
  }

  /**
   * Like etcd's server, ship a snapshot of the sender's current applied state rather
   * than the possibly older stored one: a member added after the stored snapshot was
   * taken is not in its ConfState and would (rightly) refuse it.
   */
  private mergedSnapshot(m: Message): Message {
    const from = this.nodes.get(Number(m.from))!;
    if (from.applied <= m.snapshot!.metadata.index) return m;
    const term = from.storage.term(from.applied);
    const snapshot = {
      data: hashBytes(from.hash),
      metadata: { index: from.applied, term, confState: from.confState },
    };
    return { ...m, snapshot };
  }

  /** What a transport tells its sender when a message is lost, as etcd's does. */
  private reportFailure(m: Message): void {
    const from = this.nodes.get(Number(m.from))?.rn;
    if (!from) return;
    if (m.type === MessageType.MsgSnap) from.reportSnapshot(m.to, SnapshotStatus.Failure);
    else if (m.type === MessageType.MsgApp) from.reportUnreachable(m.to);
  }

  // --- ready handling ------------------------------------------------------

  private handleReady(node: Node, lossy: boolean, crashP: number): void {
    const rn = node.rn!;
    if (!rn.hasReady()) return;
    const rd: Ready = rn.ready();
    this.checkEntries(rd.entries);
    // A leader may send before its own write (see rawnode.ts); model a crash in between.
    const early = rn.isLeader() || this.sendBeforePersist;
    if (early) {
      this.send(rd.messages, lossy);
      if (this.rand.intn(1000) < crashP * 1000) {
        this.crash(node);
        return;
      }
    }
    if (rd.snapshot) {
      node.storage.applySnapshot(rd.snapshot);
      const md = rd.snapshot.metadata;
      const h = Number(new TextDecoder().decode(rd.snapshot.data));
      const known = this.hashAt.get(md.index);
      if (known !== undefined && known !== h) this.fail(`node ${node.id} got snapshot at ${md.index} with wrong state`);
      node.applied = md.index;
      node.hash = h;
      node.confState = md.confState;
      node.commitSeen = Math.max(node.commitSeen, md.index);
    }
    node.storage.append(rd.entries);
    if (rd.hardState) {
      node.storage.setHardState(rd.hardState);
      this.noteCommit(node, rd.hardState.commit, rd.hardState.term);
    }
    if (!early) this.send(rd.messages, lossy);
    for (const e of rd.committedEntries) {
      this.apply(node, e);
      if (!node.rn) return; // it applied its own removal and was stopped
    }
    for (const rs of rd.readStates) this.checkRead(node, rs.requestCtx, rs.index);
    rn.advance(rd);
  }

  private checkEntries(ents: Entry[]): void {
    for (const e of ents) {
      const k = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const prev = this.entryAt.get(k);
      if (prev === undefined) this.entryAt.set(k, key);
      else if (prev !== key) this.fail(`log matching: two different entries at index ${e.index} term ${e.term}`);
    }
  }

  /**
   * Records the entries a node's persisted commit index newly covers (persisted: a
   * leader may count its own unwritten entries, which a crash can still take back).
   */
  private noteCommit(node: Node, commit: number, term: number): void {
    if (commit <= node.commitSeen) return;
    const log = node.rn!.raft.raftLog;
    const lo = Math.max(node.commitSeen + 1, log.firstIndex());
    node.commitSeen = commit;
    if (lo > commit) return;
    for (const e of log.slice(lo, commit + 1, Number.MAX_SAFE_INTEGER)) this.noteCommitted(node, e, term, "committed");
  }

  /** Committed (a fortiori applied) entries are never replaced, on any node, for the whole run. */
  private noteCommitted(node: Node, e: Entry, knownAt: number, how: string): void {
    const key = entryKey(e);
    const c = this.committedAt.get(e.index);
    if (c === undefined) {
      this.committedAt.set(e.index, { key, term: e.term, knownAt });
      this.maxCommitted = Math.max(this.maxCommitted, e.index);
    } else if (c.key !== key) {
      this.fail(`state machine safety: node ${node.id} ${how} ${e.index}/${e.term} where ${e.index}/${c.term} was`);
    } else if (knownAt < c.knownAt) {
      c.knownAt = knownAt;
    }
  }

  private apply(node: Node, e: Entry): void {
    if (e.index <= node.applied) return; // replay after restart, below the snapshot
    if (e.index !== node.applied + 1) this.fail(`node ${node.id} applied ${e.index} after ${node.applied}`);
    const key = entryKey(e);
    this.noteCommitted(node, e, node.rn!.raft.term, "applied");
    this.stats.applied = Math.max(this.stats.applied, e.index);
    node.hash = mixHash(node.hash, key);
    const h = this.hashAt.get(e.index);
    if (h === undefined) this.hashAt.set(e.index, node.hash);
    else if (h !== node.hash) this.fail(`node ${node.id} state diverged at ${e.index}`);
    node.applied = e.index;
    if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) {
      const cc = e.type === EntryType.ConfChange
        ? this.lib.decodeConfChange(e.data)
        : this.lib.decodeConfChangeV2(e.data);
      for (const c of "changes" in cc ? cc.changes : [cc]) {
        if (c.type === ConfChangeType.RemoveNode) this.removalsRequested.add(Number(c.nodeId));
      }
      node.confState = node.rn!.applyConfChange(cc);
      this.noteRemovals(node.confState);
    }
  }

  /** etcd stops a member once its removal is applied anywhere; so do we. */
  private noteRemovals(cs: ConfState): void {
    const members = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
    for (const id of this.removalsRequested) {
      const n = this.nodes.get(id);
      if (n && !members.has(BigInt(id)) && !n.removed) {
        n.removed = true;
        n.rn = undefined;
      }
    }
  }

  // --- faults ----------------------------------------------------------------

  private crash(node: Node): void {
    node.rn = undefined;
    node.restartAt = this.now + 1 + this.rand.intn(60);
    this.stats.crashes++;
  }

  private restart(node: Node): void {
    const snap = node.storage.snapshot();
    node.applied = snap.metadata.index;
    node.hash = snap.metadata.index > 0 ? Number(new TextDecoder().decode(snap.data)) : 0;
    node.confState = snap.metadata.confState;
    node.rn = new this.lib.RawNode({ ...this.config(node.id, node.storage), applied: snap.metadata.index });
    node.commitSeen = node.storage.initialState().hardState.commit;
    // Crashed before persisting its bootstrap: bootstrap again, as etcd does on an empty
    // WAL. Starting blank instead would let it apply "AddNode(self)" alone and elect itself.
    if (node.id <= this.initialIds.length && node.storage.lastIndex() === 0) {
      node.rn.bootstrap(this.initialIds.map((id) => ({ id: BigInt(id) })));
    }
    this.checkTerm(node);
  }

  /** Cuts a node off with a minority of the others: the majority side can elect a new leader. */
  private isolate(node: Node): void {
    const others = [...this.nodes.values()].filter((n) => !n.removed && n !== node);
    const part = new Set([node.id]);
    for (const n of others) if (part.size < Math.floor(others.length / 2) && this.rand.intn(3) === 0) part.add(n.id);
    this.partition = part;
  }

  private leader(): Node | undefined {
    let best: Node | undefined;
    for (const n of this.nodes.values()) {
      if (n.rn && n.rn.isLeader() && (!best || n.rn.raft.term > best.rn!.raft.term)) best = n;
    }
    return best;
  }

  private liveNodes(): Node[] {
    return [...this.nodes.values()].filter((n) => n.rn);
  }

  private propose(node: Node, data: string): void {
    try {
      node.rn!.propose(enc.encode(data));
    } catch (e) {
      if (e !== this.lib.ErrProposalDropped) throw e;
    }
  }

  private proposeConfChange(): void {
    const lead = this.leader();
    if (!lead) return;
    const r = lead.rn!.raft;
    const cfg = r.prs.config;
    if (cfg.voters.isJoint() || r.pendingConfIndex > r.raftLog.applied) return;
    const voters = [...cfg.voters.incoming];
    const learners = [...cfg.learners];
    const pick = <T>(xs: T[]) => xs[this.rand.intn(xs.length)];
    const changes: ConfChangeSingle[] = [];
    const spare = () => {
      const id = this.nextSpare++;
      this.newNode(id); // empty storage, learns everything from the leader
      return BigInt(id);
    };
    switch (this.rand.intn(5)) {
      case 0:
        if (voters.length + learners.length < 6) changes.push({ type: ConfChangeType.AddNode, nodeId: spare() });
        break;
      case 1:
        if (voters.length + learners.length < 6) changes.push({ type: ConfChangeType.AddLearnerNode, nodeId: spare() });
        break;
      case 2:
        if (learners.length > 0) changes.push({ type: ConfChangeType.AddNode, nodeId: pick(learners) });
        break;
      case 3:
        if (voters.length > 2) changes.push({ type: ConfChangeType.RemoveNode, nodeId: pick(voters) });
        break;
      case 4:
        // Replace a voter through a joint config.
        if (voters.length >= 3) {
          changes.push({ type: ConfChangeType.RemoveNode, nodeId: pick(voters) });
          changes.push({ type: ConfChangeType.AddNode, nodeId: spare() });
        }
        break;
    }
    if (changes.length === 0) return;
    try {
      if (changes.length === 1 && this.rand.intn(2) === 0) {
        lead.rn!.proposeConfChange({ id: 0n, type: changes[0].type, nodeId: changes[0].nodeId });
      } else {
        lead.rn!.proposeConfChange({ transition: ConfChangeTransition.Auto, changes });
      }
      this.stats.confChanges++;
    } catch (e) {
      if (e !== this.lib.ErrProposalDropped) throw e;
    }
  }

  private compact(node: Node): void {
    const snapIndex = node.storage.snapshot().metadata.index;
    if (node.applied <= snapIndex + 2) return;
    node.storage.createSnapshot(node.applied, node.confState, hashBytes(node.hash));
    node.storage.compact(node.applied);
    this.stats.snapshots++;
  }

  // --- checks ---------------------------------------------------------------

  /** Terms rise only by standing for election or by hearing of a higher one (PreVote must not bump them). */
  private checkTerm(node: Node): void {
    const r = node.rn?.raft;
    if (!r) return;
    if (r.state === StateType.Candidate || r.state === StateType.Leader) {
      node.termSeen = Math.max(node.termSeen, r.term);
    } else if (r.term > node.termSeen) {
      this.fail(`node ${node.id} is at term ${r.term} (${StateType[r.state]}) unbidden`);
    }
  }

  /**
   * What a read issued now must see. Safe reads: everything committed before (they are
   * linearizable). Lease reads: everything committed a lease ago. A deposed leader keeps
   * answering until CheckQuorum finds it alone: up to two election timeouts after the
   * last quorum member moved on, plus that member's last answer in flight (etcd's lease
   * has the same slack).
   */
  private readFloor(): number {
    if (!this.leaseReads) return this.maxCommitted;
    const slack = 2 * 10 + this.maxDelay + 2;
    return this.commitHistory[this.now - slack] ?? 0;
  }

  /** A read's index must reach its floor. */
  private checkRead(node: Node, ctx: Uint8Array, index: number): void {
    const key = ctxKey(ctx);
    const min = this.reads.get(key);
    if (min === undefined) return; // a duplicate answer
    this.reads.delete(key);
    this.stats.reads++;
    if (index < min) {
      this.fail(`linearizability: ${key} on node ${node.id} reads at ${index}, ${min} was committed before`);
    }
  }

  private checkLeaders(): void {
    for (const n of this.nodes.values()) {
      if (!n.rn || !n.rn.isLeader()) continue;
      const r = n.rn.raft;
      const prev = this.leaderOf.get(r.term);
      if (prev === undefined) {
        this.leaderOf.set(r.term, n.id);
        this.stats.elections++;
        this.checkLeaderCompleteness(n);
        // A leader cut off before replicating its first entry leaves a higher last term behind.
        if (this.chaos && this.rand.intn(1000) < this.isolateP * 1000) this.cutOff = n;
      } else if (prev !== n.id) {
        this.fail(`election safety: ${prev} and ${n.id} both lead term ${r.term}`);
      }
    }
  }

  /**
   * Leader completeness (§5.4): an entry committed in term t is in the log of every
   * leader of a later term. knownAt bounds t from above, whenever the commit happened.
   */
  private checkLeaderCompleteness(n: Node): void {
    const r = n.rn!.raft;
    const log = r.raftLog;
    for (let i = Math.max(log.firstIndex(), 1); i <= this.maxCommitted; i++) {
      const c = this.committedAt.get(i);
      if (c === undefined || c.knownAt >= r.term || log.termOrZero(i) === c.term) continue;
      this.fail(
        `leader completeness: leader ${n.id} of term ${r.term} lacks ${i}/${c.term}, committed by term ${c.knownAt}`,
      );
    }
  }

  /** Log matching: logs agreeing on an entry's term agree on everything before it. */
  private checkLogMatching(): void {
    const live = this.liveNodes();
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const la = live[a].rn!.raft.raftLog;
        const lb = live[b].rn!.raft.raftLog;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        let hi = Math.min(la.lastIndex(), lb.lastIndex());
        while (hi >= lo && la.termOrZero(hi) !== lb.termOrZero(hi)) hi--;
        if (hi < lo) continue;
        const ea = la.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER);
        const eb = lb.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER);
        for (let i = 0; i < ea.length; i++) {
          if (entryKey(ea[i]) !== entryKey(eb[i])) {
            this.fail(`log matching: nodes ${live[a].id} and ${live[b].id} differ at ${ea[i].index} below ${hi}`);
          }
        }
      }
    }
  }

  // --- driver ------------------------------------------------------------------

  private step(chaos: boolean): void {
    this.now++;
    this.stats.steps++;
    this.chaos = chaos;
    const r = this.rand;
    if (chaos) {
      const ev = r.intn(100);
      const all = [...this.nodes.values()].filter((n) => !n.removed);
      const churn = !this.longPartitions || r.intn(4) === 0;
      if (ev < 3) {
        if (churn) {
          const part = new Set<number>();
          for (const n of all) if (r.intn(2) === 0) part.add(n.id);
          this.partition = part;
        }
      } else if (ev < 6) {
        if (churn) this.partition = undefined;
      } else if (ev < 9) {
        const live = all.filter((n) => n.rn);
        if (live.length > 0) this.crash(live[r.intn(live.length)]);
      } else if (ev < 11) {
        // Leaders die young: old-term entries then get finished by new leaders.
        const lead = this.leader();
        if (lead) this.crash(lead);
      } else if (ev < 14) {
        const dead = all.filter((n) => !n.rn);
        if (dead.length > 0) this.restart(dead[r.intn(dead.length)]);
      } else if (ev < 16) {
        this.proposeConfChange();
      } else if (ev < 18) {
        const live = all.filter((n) => n.rn);
        if (live.length > 0) this.compact(live[r.intn(live.length)]);
      } else if (ev < 19) {
        const lead = this.leader();
        const voters = lead ? [...lead.rn!.raft.prs.config.voters.incoming] : [];
        if (lead && voters.length > 0) lead.rn!.transferLeader(voters[r.intn(voters.length)]);
      } else if (ev < 45) {
        const live = all.filter((n) => n.rn);
        if (live.length > 0) this.propose(live[r.intn(live.length)], `p${this.propCounter++}`);
      } else if (ev < 52) {
        // Half the reads go to the stalest node that believes it leads: a deposed leader
        // must not answer them from its own commit index.
        const live = all.filter((n) => n.rn);
        const leaders = live.filter((n) => n.rn!.isLeader()).sort((a, b) => a.rn!.raft.term - b.rn!.raft.term);
        const to = leaders.length > 0 && r.intn(2) === 0 ? leaders[0] : live[r.intn(live.length)];
        if (to) {
          const ctx = `r${this.propCounter++}`;
          this.reads.set(ctx, this.readFloor());
          to.rn!.readIndex(enc.encode(ctx));
        }
      }
    }
    for (const n of this.nodes.values()) {
      if (!n.rn && !n.removed && chaos && n.restartAt <= this.now) this.restart(n);
      if (!n.rn) continue;
      n.rn.tick();
      this.checkTerm(n);
    }
    this.deliver();
    for (const n of [...this.nodes.values()]) {
      if (n.rn) this.handleReady(n, chaos, chaos ? 0.02 : 0);
    }
    this.checkLeaders();
    if (this.cutOff) {
      if (this.cutOff.rn) this.isolate(this.cutOff);
      this.cutOff = undefined;
    }
    this.commitHistory[this.now] = this.maxCommitted;
    if (this.now % 10 === 0) this.checkLogMatching();
  }

  /** Heals everything and checks that a leader emerges and a fresh proposal commits everywhere. */
  private checkLiveness(budget: number): void {
    this.partition = undefined;
    for (const n of this.nodes.values()) if (!n.rn && !n.removed) this.restart(n);
    const marker = `live-${this.seed}`;
    let markerIndex = 0;
    for (let t = 0; t < budget; t++) {
      this.step(false);
      const lead = this.leader();
      if (!lead) continue;
      if (markerIndex === 0 || t % 30 === 0) {
        // Re-propose: the first attempt may be dropped (e.g. during a transfer).
        const before = lead.rn!.raft.raftLog.lastIndex();
        this.propose(lead, marker);
        if (lead.rn!.raft.raftLog.lastIndex() > before) markerIndex = lead.rn!.raft.raftLog.lastIndex();
        continue;
      }
      const cs = lead.rn!.raft.prs.confState();
      const members = [...cs.voters, ...cs.learners];
      const done = members.every((id) => {
        const n = this.nodes.get(Number(id));
        return n && n.rn && n.applied >= markerIndex && this.committedAt.get(markerIndex)?.key.endsWith(marker);
      });
      if (done) return;
    }
    this.fail(`liveness: no leader committed a proposal on all members within ${budget} ticks after healing`);
  }

  run(chaosSteps: number, healBudget: number): SimResult {
    try {
      for (let i = 0; i < chaosSteps; i++) this.step(true);
      this.checkLiveness(healBudget);
      this.checkLogMatching();
      if (this.stats.applied === 0) this.fail("nothing was ever applied");
      return { ok: true, seed: this.seed, stats: this.stats };
    } catch (e) {
      const msg = e instanceof SimError ? e.message : `t=${this.now}: exception: ${(e as Error).stack ?? e}`;
      return { ok: false, seed: this.seed, error: msg, stats: this.stats };
    }
  }
}

export function runSeed(seed: number, chaosSteps = 1200, healBudget = 400, opts: SimOptions = {}): SimResult {
  return new Simulator(seed, opts).run(chaosSteps, healBudget);
}
