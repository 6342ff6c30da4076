// The glue between the pure raft library and the disk (etcd's etcdserver/raft.go): a
// ticker drives raft's clock, and one Ready at a time is persisted — snapshot, then hard
// state + entries in one WAL write with one fdatasync — appended to raft's storage,
// handed to the apply scheduler, then acknowledged with advance(). Proposals that arrive
// while a Ready is being written pile up in raft and go out together in the next one:
// that is the group commit.
import { setImmediate } from "node:timers";
import type { RawNode } from "../raft/rawnode.ts";
import type { MemoryStorage } from "../raft/storage.ts";
import {
  emptyHardState,
  type Entry,
  type Message,
  type NodeId,
  NONE,
  type ReadState,
  type Ready,
  type Snapshot,
  StateType,
} from "../raft/types.ts";
import { isConfChange } from "../raft/util.ts";
import type { WAL } from "../wal/wal.ts";
import type { Snapshotter } from "../wal/snapshotter.ts";
import type { Logger } from "./logger.ts";
import type { ServerMetrics } from "./metrics.ts";

export interface RaftNodeHooks {
  /** Committed entries (and a snapshot to restore, if any) in log order, after they are durable. */
  apply(entries: Entry[], snapshot: Snapshot | undefined): void;
  leaderChanged(lead: NodeId, isLeader: boolean): void;
  readStates(states: ReadState[]): void;
  /** Raft traffic for other members; single-member clusters never call it. */
  send(messages: Message[]): void;
  /** A failure of the disk path: the member must stop, since raft's promises no longer hold. */
  fatal(err: unknown): void;
  /** After each advance(): the moment raft accepts campaign() and conf-change proposals. */
  advanced(): void;
}

export class RaftNode {
  private ticker: ReturnType<typeof setInterval> | undefined;
  private drainQueued = false;
  private stopped = false;
  /** Disk work (Ready handling, snapshots) runs one piece at a time on this chain. */
  private chain: Promise<void> = Promise.resolve();
  lead: NodeId = NONE;
  term = 0;
  commitIndex = 0;

  constructor(
    readonly rawNode: RawNode,
    readonly storage: MemoryStorage,
    private readonly wal: WAL,
    private readonly snapshotter: Snapshotter,
    private readonly heartbeatMs: number,
    private readonly hooks: RaftNodeHooks,
    private readonly logger: Logger,
    private readonly metrics: ServerMetrics,
  ) {}

  start(): void {
    if (this.stopped) return;
    this.ticker = setInterval(() => {
      this.rawNode.tick();
      this.kick();
    }, this.heartbeatMs);
    this.kick();
  }

  /** Call after anything that may have produced a Ready (propose, step, readIndex...). */
  kick(): void {
    if (this.drainQueued || this.stopped) return;
    this.drainQueued = true;
    // run once the current I/O callbacks are done, so a burst of proposals lands in one
    // Ready; setImmediate, since nested setTimeout(0) is clamped to 4 ms
    setImmediate(() => {
      void this.serial(() => {
        this.drainQueued = false;
        return this.drain();
      });
    });
  }

  /** Runs fn with the disk to itself: no Ready is being persisted meanwhile. */
  async exclusive(fn: () => Promise<void>): Promise<void> {
    await this.serial(fn);
    this.kick();
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async drain(): Promise<void> {
    try {
      while (!this.stopped && this.rawNode.hasReady()) {
        await this.handleReady(this.rawNode.ready());
      }
    } catch (err) {
      this.stopped = true;
      this.hooks.fatal(err);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.hardState !== undefined) {
      this.term = rd.hardState.term;
      this.commitIndex = rd.hardState.commit;
    }
    if (rd.softState !== undefined && rd.softState.lead !== this.lead) {
      const isLeader = rd.softState.raftState === StateType.Leader;
      if (this.lead !== NONE || rd.softState.lead !== NONE) this.metrics.leaderChanges.inc();
      this.lead = rd.softState.lead;
      this.metrics.hasLeader.set(this.lead !== NONE ? 1 : 0);
      this.metrics.isLeader.set(isLeader ? 1 : 0);
      this.hooks.leaderChanged(this.lead, isLeader);
    }
    if (rd.readStates.length > 0) this.hooks.readStates(rd.readStates);

    const isLeader = this.rawNode.isLeader();
    // A leader may replicate while it writes its own disk; a follower must not
    // acknowledge anything before it is durable.
    if (isLeader && rd.messages.length > 0) this.hooks.send(rd.messages);

    const snap = rd.snapshot !== undefined && rd.snapshot.metadata.index > 0 ? rd.snapshot : undefined;
    if (snap !== undefined) await this.snapshotter.save(snap);
    if (rd.hardState !== undefined || rd.entries.length > 0) {
      await this.wal.save(rd.hardState ?? emptyHardState(), rd.entries);
    }
    if (snap !== undefined) {
      await this.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
      this.storage.applySnapshot(snap);
      this.logger.info("applied incoming snapshot", { "snapshot-index": snap.metadata.index });
    }
    if (rd.entries.length > 0) this.storage.append(rd.entries);

    // A follower's messages may go once what they acknowledge is durable, before the apply (etcd's raftNode): its
    // acknowledgements then do not wait for the apply of entries committed earlier, which a leader bringing it up to
    // date would (an apply of 3415 entries took ~27 ms). Not past a configuration change before it is applied: votes
    // from a removed member must not count, nor may a member lead a cluster it has not yet learnt it left.
    const sendNow = !isLeader && rd.messages.length > 0 && !rd.committedEntries.some(isConfChange);
    if (sendNow) {
      this.hooks.send(rd.messages);
      // the streams write what was queued in a microtask: before the apply, not after it
      await Promise.resolve();
    }
    if (rd.committedEntries.length > 0 || rd.snapshot !== undefined) {
      this.hooks.apply(rd.committedEntries, rd.snapshot);
    }
    if (!isLeader && !sendNow && rd.messages.length > 0) this.hooks.send(rd.messages);
    this.rawNode.advance(rd);
    this.hooks.advanced();
  }

  /** Stops ticking and waits for the Ready being written, so nothing is half-persisted. */
  async stop(): Promise<void> {
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.ticker = undefined;
    this.stopped = true;
    await this.chain;
  }
}
