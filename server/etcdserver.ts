// EtcdServer (etcd's etcdserver.EtcdServer): bootstraps a member from its data dir, runs
// the raft node, applies committed entries in order through the FIFO scheduler, and
// answers client requests — writes by proposing through raft and waiting for their own
// entry's apply result, reads from the applied state once it is linearizable.
import { setImmediate } from "node:timers";
import { decodeRequest, encodeRequest, isMembershipRecord, peekRequestId } from "./raft_request_codec.ts";
import type { InternalRaftRequest } from "../rpc/gen/etcdserverpb/raft_internal_pb.ts";
import {
  type AlarmMember,
  type AlarmRequest,
  AlarmRequest_AlarmAction,
  type AlarmResponse,
  AlarmType,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type TxnRequest,
  type TxnResponse,
} from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { decodeConfChange, decodeConfChangeV2 } from "../raft/confchange_codec.ts";
import { RawNode, SnapshotStatus } from "../raft/rawnode.ts";
import {
  ConfChangeType,
  type ConfState,
  emptyConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type Snapshot,
  StateType,
} from "../raft/types.ts";
import { isConfChange } from "../raft/util.ts";
import type { MemoryStorage } from "../raft/storage.ts";
import {
  Applier,
  checkDeleteRequest,
  checkPutRequest,
  checkRangeRequest,
  costPut,
  costTxn,
  isTxnReadonly,
  isTxnSerializable,
  validateTxnRequest,
} from "./apply.ts";
import {
  ErrGRPCBadLeaderTransferee,
  ErrGRPCLeaseNotFound,
  ErrGRPCNoLeader,
  ErrGRPCNoSpace,
  ErrGRPCNotLeader,
  ErrGRPCRequestTooLarge,
  ErrGRPCRequestTooManyRequests,
  ErrGRPCStopped,
  ErrGRPCTimeout,
  ErrGRPCTimeoutDueToLeaderFail,
  ErrTimeoutLeaderTransfer,
  RpcError,
} from "./apply_errors.ts";
import { electionTicks, type EtcdConfig, parseCompactionRetention } from "./config.ts";
import { AutoCompactor } from "../mvcc/auto_compactor.ts";
import { AlarmStore, alarmString } from "./alarm_store.ts";
import { WatchableStore } from "../mvcc/watchable_store.ts";
import type { Backend } from "../mvcc/backend.ts";
import { failpoint, failpointHold } from "../mvcc/failpoints.ts";
import { FifoScheduler } from "./scheduler.ts";
import { IdGenerator } from "./id_generator.ts";
import type { LogFields, Logger } from "./logger.ts";
import {
  applyMembershipRecord,
  computeMemberId,
  type Member,
  memberJSON,
  parseMemberContext,
  RaftCluster,
} from "./membership.ts";
import { urlString } from "./urls.ts";
import type { ServerMetrics } from "./metrics.ts";
import { RaftNode } from "./raft_node.ts";
import { bootstrapMember, type Bootstrapped, snapshotCatchUpEntries } from "./bootstrap.ts";
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION } from "./version.ts";
import { Wait } from "./wait.ts";
import { ReadIndexLoop } from "./read_index.ts";
import { type Checkpoint, type Lessor, NotPrimaryError } from "./lease/lessor.ts";
import { applyLeaseCheckpoint, applyLeaseGrant, applyLeaseRevoke, LEASE_QUOTA_COST } from "./lease/lease_apply.ts";
import { LessorLoop } from "./lease/lessor_loop.ts";
import {
  LEASE_INTERNAL_PREFIX,
  LEASE_PREFIX,
  leaseHttpHandler,
  renewHTTP,
  timeToLiveHTTP,
} from "./lease/lease_http.ts";
import {
  acceptPeerRequest,
  boltSnapshotBody,
  fileSnapshotBody,
  MEMBER_REMOVED,
  pipelineHandler,
  probingHandler,
  RAFT_PREFIX,
  RAFT_PROBING_PREFIX,
  RAFT_SNAPSHOT_PREFIX,
  snapshotHandler,
  Transport,
} from "./peer/transport.ts";
import { STREAM_PREFIX, streamHandler } from "./peer/stream.ts";
import { LeaderMonitor } from "./require_leader.ts";
import { LinkFaults } from "./peer/link_faults.ts";
import { checkHashKV, checkInitialHashKV, type CorruptCheckView, hashKVHandler, PEER_HASHKV_PATH } from "./corrupt.ts";
import { mayAddMember, mayPromoteMember, mayRemoveMember, type ReconfigureView } from "./reconfigure.ts";
import { MEMBER_PROMOTE_PREFIX, MEMBERS_PREFIX, membersHandler, promoteOnLeader } from "./peer/members_http.ts";
import type { PeerRequest, PeerResponse } from "./peer/http.ts";

/** etcd's maxGapBetweenApplyAndCommitIndex: past it, new proposals are refused. */
const maxGapBetweenApplyAndCommit = 5000;
/** The most a leader keeps behind a snapshot, beyond snapshotCatchUpEntries, for a member further behind. */
const RETAINED_BYTES = 64 * 1024 * 1024;
/** The pause before a failed publish is proposed again (see proposeUntilApplied). */
const PROPOSE_RETRY_MS = 100;

export class EtcdServer {
  readonly id: NodeId;
  readonly cluster: RaftCluster;
  private readonly raft: RaftNode;
  private readonly applier: Applier;
  private readonly alarms: AlarmStore;
  /** Watchers of the store: fed by every applied write, the seam leases and followers' apply loops will share. */
  readonly watchable: WatchableStore;
  /** The leases; the primary lessor while this member leads. */
  readonly lessor: Lessor;
  private readonly lessorLoop: LessorLoop;
  /** Raft messages to the other members, and `POST /raft` for theirs (server/peer). */
  private readonly transport: Transport;
  /** Injected link faults (DETCD_LINK_FAULTS, tests only). */
  private readonly linkFaults: LinkFaults | undefined;
  readonly peerPipeline: (req: PeerRequest, res: PeerResponse) => void;
  /** `GET /members` and `POST /members/promote/<id>` on the peer port. */
  readonly peerMembers: (req: PeerRequest, res: PeerResponse) => void;
  /** `GET /members/hashkv`: this member's HashKV for a peer's corruption check. */
  readonly peerHashKV: (req: PeerRequest, res: PeerResponse) => void;
  private corruptMonitor: ReturnType<typeof setInterval> | undefined;
  /** Streams that required a leader end when the member has long had none (WithRequireLeader). */
  readonly leaderMonitor: LeaderMonitor;
  /** `GET /raft/stream/<type>/<from>`: a peer dials the stream of messages for it. */
  readonly peerStream: (req: PeerRequest, res: PeerResponse) => void;
  /** `POST /raft/snapshot`: a leader's snapshot and backend. */
  readonly peerSnapshot: (req: PeerRequest, res: PeerResponse) => void;
  /** Snapshots being sent to followers: the raft log is not compacted meanwhile (they need what follows them). */
  private inflightSnapshots = 0;
  /** Callers waiting for the applied index to reach an index (etcd's ApplyWait). */
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  /** Proposals waiting for their apply result, with the request so applying it needs no decode. */
  private readonly wait: Wait<unknown, InternalRaftRequest | undefined>;
  private readonly scheduler: FifoScheduler;
  private readonly reqIds: IdGenerator;
  private appliedIndex: number;
  private snapshotIndex: number;
  private confState: ConfState;
  private readonly reqTimeoutMs: number;
  private readonly readyResolvers = Promise.withResolvers<void>();
  /** The cluster version's proposal in flight (see setClusterVersion). */
  private settingVersion: Promise<boolean> | undefined;
  private readonly stopResolvers = Promise.withResolvers<void>();
  private stopping = false;
  /**
   * The proposals waiting when the leader was found gone, and its term (see leaderGone): forwarded to it, most died
   * with it. Once an entry of a later term is applied, every entry of the gone leader that will ever be applied has
   * been (a log's terms never decrease, and the new leader's entry follows only what it had); what still waits then is
   * answered etcd's "possibly due to previous leader failure" at once rather than at the request timeout.
   */
  private lostWithLeader: { term: number; ids: number[] } | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private compactor: AutoCompactor | undefined;
  private fatalError: unknown = undefined;
  /** Proposers waiting for a leader to exist (raft drops proposals without one). */
  private leaderWaiters: (() => void)[] = [];
  private snapshotting = false;
  /** The local snapshot being written (see snapshot()): an install of a leader's and stop() wait for it. */
  private snapshotDone: Promise<void> = Promise.resolve();
  /**
   * This member's state restored from its backend (see restoreLocal): true once the store, leases and alarms hold it,
   * false when a leader's snapshot superseded it first. Set by create() or start().
   */
  private localRestore: Promise<boolean> | undefined;
  /**
   * Holds the local restore while a leader's snapshot is being received (restorePauses of them): that snapshot would
   * supersede it, and the member's one thread is better spent receiving it. Rejected when one supersedes it.
   */
  private restorePause: PromiseWithResolvers<void> | undefined;
  private restorePauses = 0;
  /** The index of the leader's snapshot that superseded the local restore (0: none). */
  private supersededBy = 0;
  /** The store holds this member's state: its own restored, or a leader's snapshot installed. */
  private storeIsReady = false;
  private readonly storeReady = Promise.withResolvers<void>();
  private removedStop = false;
  /** Whether this member is a learner: asked on every call (services.ts), so kept as the membership changes. */
  private learner = false;
  /** stop() is handing leadership over before it stops. */
  private handingOver = false;
  private readonly reads: ReadIndexLoop;
  private termBig: [number, bigint] = [0, 0n];
  private sharedHeaderCache = {
    revision: -1,
    term: -1,
    clusterId: NONE,
    header: undefined as unknown as ResponseHeader,
  };

  private constructor(
    readonly cfg: EtcdConfig,
    private readonly b: Bootstrapped,
    readonly logger: Logger,
    readonly metrics: ServerMetrics,
  ) {
    this.id = b.memberId;
    this.wait = new Wait((failed) => {
      this.metrics.proposalsPending.dec();
      if (failed) this.metrics.proposalsFailed.inc();
    });
    this.cluster = b.cluster;
    this.syncLearner();
    this.lessor = b.lessor;
    this.linkFaults = LinkFaults.fromEnv(logger);
    this.transport = new Transport({
      localId: this.id,
      clusterId: () => this.cluster.clusterId,
      localUrls: cfg.initialAdvertisePeerUrls.map(urlString),
      // the peers known at start (remotes) until the membership says otherwise: a removed one is forgotten
      peerUrls: (id) =>
        this.cluster.members.get(id)?.peerUrls ?? (this.cluster.removed.has(id) ? undefined : b.remotes.get(id)),
      unreachable: (id) => this.raft.rawNode.reportUnreachable(id),
      peers: () => this.peerIds(),
      removed: () => this.stopRemoved(),
      // a leader heartbeats a peer that dialed it at once: a restarted follower learns the leader, and the leader how
      // far behind it is, without waiting up to a heartbeat interval (~50 ms of a catch-up on average)
      dialed: () => {
        if (!this.raft.rawNode.isLeader()) return;
        this.raft.rawNode.heartbeat();
        this.raft.kick();
      },
      reachable: (id) => {
        if (id === this.raft.lead) this.wakeLeaderWaiters();
      },
      gone: (id) => this.leaderGone(id),
      receive: (m) => this.receive(m),
      metrics: metrics.peer,
      logger,
      faults: this.linkFaults,
    });
    const peerHandlerOpts = {
      clusterId: () => this.cluster.clusterId,
      receive: (m: Message) => this.receive(m),
      isRemoved: (id: NodeId) => this.cluster.removed.has(id),
      notePeer: (id: NodeId, detcd: boolean) => this.transport.notePeer(id, detcd),
      metrics: metrics.peer,
      logger,
    };
    this.peerPipeline = pipelineHandler(peerHandlerOpts);
    const streams = streamHandler({
      localId: this.id,
      writer: (from, type) => this.transport.streamWriter(from, type),
      logger,
    });
    this.peerStream = (req, res) => {
      if (acceptPeerRequest(req, res, peerHandlerOpts, "GET")) streams(req, res);
    };
    this.leaderMonitor = new LeaderMonitor(() => this.raft.lead !== NONE, cfg.electionTimeoutMs);
    this.peerHashKV = hashKVHandler({
      clusterId: () => this.cluster.clusterId,
      hashByRev: (rev) => this.b.store.hashByRev(rev),
      logger,
    });
    this.peerMembers = membersHandler({
      clusterId: () => this.cluster.clusterId,
      members: () => this.cluster.list(),
      promote: (id) => this.promoteMember(id),
    });
    this.peerSnapshot = snapshotHandler({
      ...peerHandlerOpts,
      receive: (m) => {
        this.receive(m);
        // raft took it: its Ready supersedes the restore (see apply); or not: the restore goes on
        if (!this.raft.rawNode.hasPendingSnapshot()) this.resumeRestore();
      },
      saveDb: async (chunks, index) => {
        this.pauseRestore();
        try {
          failpoint("beforeSnapshotSave");
          return await b.snapshotter.saveDbFrom(chunks, index);
        } catch (err) {
          this.resumeRestore();
          throw err;
        }
      },
    });
    this.applier = new Applier(b.store, {
      quotaBackendBytes: cfg.quotaBackendBytes,
      leaseExists: (id) => b.lessor.lookup(id) !== undefined,
    });
    const checkpoint = (cps: Checkpoint[]) =>
      this.propose({
        $typeName: "etcdserverpb.InternalRaftRequest",
        ID: 0n,
        leaseCheckpoint: {
          $typeName: "etcdserverpb.LeaseCheckpointRequest",
          checkpoints: cps.map((c) => ({
            $typeName: "etcdserverpb.LeaseCheckpoint",
            ID: c.id,
            remainingTTL: BigInt(c.remainingTTL),
          })),
        },
      });
    if (cfg.leaseCheckpoint) b.lessor.setCheckpointer(checkpoint);
    this.lessorLoop = new LessorLoop(b.lessor, {
      revoke: (id) => this.leaseRevoke({ $typeName: "etcdserverpb.LeaseRevokeRequest", ID: id }),
      checkpoint,
      expired: () => metrics.leaseExpired.inc(),
      logger,
    });
    this.alarms = new AlarmStore(b.backend);
    this.watchable = new WatchableStore(b.store);
    this.capApplier();
    this.reqIds = new IdGenerator(this.id, Date.now());
    this.appliedIndex = b.snapshot?.metadata.index ?? 0;
    this.snapshotIndex = b.replayed?.snapshotIndex ?? this.appliedIndex;
    this.confState = b.snapshot?.metadata.confState ?? emptyConfState();
    this.reqTimeoutMs = 5000 + 2 * electionTicks(cfg) * cfg.heartbeatIntervalMs;
    this.scheduler = new FifoScheduler(1 << 16, (err) => this.fatal(err));
    this.reads = new ReadIndexLoop(
      (ctx) => {
        this.raft.rawNode.readIndex(ctx);
        this.raft.kick();
      },
      () => this.appliedIndex,
      () => this.reqIds.nextBig(),
    );
    const rawNode = new RawNode({
      id: this.id,
      electionTick: electionTicks(cfg),
      heartbeatTick: 1,
      storage: b.storage,
      applied: this.appliedIndex,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 512,
      checkQuorum: true,
      preVote: cfg.preVote,
      // a fresh seed per start, as etcd's timeouts come from a time-seeded source: seeded by the member ID alone,
      // every restart of a cluster drew the same election timeouts, and a failover took the same ~2 s every time
      seed: crypto.getRandomValues(new Uint32Array(1))[0],
    });
    if (b.peers !== undefined) rawNode.bootstrap(b.peers);
    this.raft = new RaftNode(
      rawNode,
      b.storage,
      b.wal,
      b.snapshotter,
      cfg.heartbeatIntervalMs,
      {
        apply: (entries, snap) => {
          if (snap !== undefined && !this.storeIsReady) this.supersedeRestore(snap.metadata.index);
          this.scheduler.schedule(() => this.applyAll(entries, snap));
        },
        leaderChanged: (lead, isLeader) => this.onLeaderChanged(lead, isLeader),
        readStates: (states) => this.reads.onReadStates(states),
        send: (msgs) => this.send(msgs),
        fatal: (err) => this.fatal(err),
        advanced: () => this.campaignIfLoneVoter(),
      },
      logger,
      metrics,
    );
  }

  static async create(cfg: EtcdConfig, logger: Logger, metrics: ServerMetrics): Promise<EtcdServer> {
    const box: { server?: EtcdServer; failure?: Error } = {};
    const b = await bootstrapMember(cfg, logger, {
      onWalFsync: (seconds) => metrics.walFsyncDuration.observe(seconds),
      onBackendCommit: (seconds) => metrics.backendCommitDuration.observe(seconds),
      // etcd panics ("failed to commit transaction"): the member stops at once, loudly
      onBackendFailure: (e) => {
        logger.error("failed to commit backend transaction", { error: e.message });
        if (box.server !== undefined) box.server.fatal(e);
        else box.failure = e;
      },
    });
    const server = box.server = new EtcdServer(cfg, b, logger, metrics);
    if (box.failure !== undefined) server.fatal(box.failure);
    // A configuration change in the log is applied before raft runs, as etcd applies one in raft's first Ready before
    // it sends anything: the members it adds are unknown until then (a new member has nothing to restore). A member
    // whose log has none, its membership from its snapshot, restores while raft already runs (see start()).
    if (b.peers !== undefined || logHasConfChange(b.storage)) {
      try {
        await (server.localRestore = server.restoreLocal());
      } catch (err) {
        await b.close().catch(() => {});
        throw err;
      }
    }
    return server;
  }

  /** Resolves once this member has published itself through raft and can serve clients. */
  get ready(): Promise<void> {
    return this.readyResolvers.promise;
  }

  /** Resolves when the server has stopped (by stop() or by a fatal error). */
  get stopped(): Promise<void> {
    return this.stopResolvers.promise;
  }

  start(): void {
    this.logger.info("starting etcd server", {
      "local-member-id": this.id.toString(16),
      "cluster-id": this.cluster.clusterId.toString(16),
    });
    const restore = this.localRestore ??= this.restoreLocal();
    restore.catch((err) => this.fatal(err));
    this.transport.start();
    // raft now, with the restore going on: the Ready of the log's committed tail is persisted and its apply waits for
    // the restore; a lagging member is answered by its leader at once, maybe with a snapshot that supersedes the
    // restore. The clock (elections, heartbeats) once the restore is done: a configuration change committed meanwhile
    // waits for it to be applied, and a member must not campaign in a configuration it has left.
    this.raft.kick();
    void restore.then(() => {
      this.raft.start();
      void this.adjustTicks();
    }, () => {});
    this.sweeper = setInterval(() => {
      const now = performance.now();
      this.wait.expire(now, ErrGRPCTimeout);
      this.reads.expire(now, ErrGRPCTimeout);
    }, 250);
    void this.publish();
    void this.storeReady.promise.then(() => {
      if (this.stopping) return;
      this.startAutoCompaction();
      this.startCorruptionMonitor();
    });
    this.leaderMonitor.start();
    this.lessorLoop.start();
    if (this.cfg.leaseCheckpoint && !this.cfg.leaseCheckpointPersist) {
      this.logger.warn(
        "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist",
        {},
      );
    }
  }

  /** --auto-compaction-*: compactions go through raft like a client's Compact. */
  private startAutoCompaction(): void {
    const retention = parseCompactionRetention(this.cfg.autoCompactionMode, this.cfg.autoCompactionRetention);
    if (retention === 0) return;
    this.compactor = new AutoCompactor({
      mode: this.cfg.autoCompactionMode,
      retention,
      rev: () => this.b.store.rev,
      compact: (rev) =>
        this.compact({ $typeName: "etcdserverpb.CompactionRequest", revision: BigInt(rev), physical: false }),
      onError: (err) => this.logger.warn("failed auto compaction", { error: String(err) }),
    });
    this.compactor.start();
    this.logger.info("auto compaction enabled", {
      "compact-mode": this.cfg.autoCompactionMode,
      "compact-retention": this.cfg.autoCompactionRetention,
    });
  }

  /**
   * etcd's adjustTicks with --initial-election-tick-advance: a starting member of several, once more than one peer
   * answers (polled every 50 ms for up to 5 s, etcd's ConnReadTimeout), fast-forwards its election clock to two ticks
   * before the timeout, so a new or restarted cluster elects after ~2-12 ticks instead of 10-20. Unlike etcd's, only
   * while it knows no leader: one that already hears its leader has no election to hurry, and a campaign would only
   * bump its term.
   */
  private async adjustTicks(): Promise<void> {
    if (!this.cfg.initialElectionTickAdvance || this.peerIds().length === 0) return;
    const deadline = performance.now() + 5000;
    while (!this.stopping && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      const active = this.peerIds().filter((id) => this.transport.activeSince(id) > 0);
      if (active.length < 2) continue;
      if (this.stopping || this.raft.lead !== NONE) return;
      const ticks = electionTicks(this.cfg) - 2;
      this.logger.info("initialized peer connections; fast-forwarding election ticks", {
        "local-member-id": this.id.toString(16),
        "forward-ticks": ticks,
        "forward-duration": `${ticks * this.cfg.heartbeatIntervalMs}ms`,
        "election-ticks": electionTicks(this.cfg),
        "active-remote-members": active.length,
      });
      for (let i = 0; i < ticks; i++) this.raft.rawNode.tick();
      this.raft.kick();
      return;
    }
  }

  /** The other members: those known at start (remotes) until the membership says otherwise; a removed one is not. */
  private peerIds(): NodeId[] {
    return [...new Set([...this.cluster.members.keys(), ...this.b.remotes.keys()])].filter((id) =>
      id !== this.id && !this.cluster.removed.has(id)
    );
  }

  /** A lone voter need not wait an election timeout for a leader (etcd fast-forwards its ticks). */
  private campaignIfLoneVoter(): void {
    if (this.raft.lead !== NONE || this.stopping || !this.isSingleVoter()) return;
    if (this.raft.rawNode.raft.state !== StateType.Follower) return;
    this.raft.rawNode.campaign();
    this.raft.kick();
  }

  private isSingleVoter(): boolean {
    const voters = this.confState.voters;
    return voters.length === 1 && voters[0] === this.id && this.confState.votersOutgoing.length === 0;
  }

  /** Publishes this member's name and client URLs (etcd's publish()); the leader then sets the cluster version. */
  private async publish(): Promise<void> {
    const attributes = `{Name:${this.cfg.name} ClientURLs:[${this.cfg.advertiseClientUrls.map(urlString).join(" ")}]}`;
    const published = await this.proposeUntilApplied(
      {
        $typeName: "etcdserverpb.InternalRaftRequest",
        ID: 0n,
        clusterMemberAttrSet: {
          $typeName: "etcdserverpb.ClusterMemberAttrSetRequest",
          memberID: this.id,
          memberAttributes: {
            $typeName: "etcdserverpb.MemberAttributes",
            name: this.cfg.name,
            clientUrls: this.cfg.advertiseClientUrls.map(urlString),
          },
        },
      },
      "publish local member to cluster through raft",
      { "local-member-attributes": attributes },
    );
    if (!published) return;
    this.logger.info("published local member to cluster through raft", {
      "local-member-id": this.id.toString(16),
      "local-member-attributes": attributes,
      "cluster-id": this.cluster.clusterId.toString(16),
    });
    if (!(await this.setClusterVersion())) return;
    this.readyResolvers.resolve();
  }

  /**
   * The leader sets the cluster version once, as etcd's leader decides it (every member used to propose it when it
   * published: three entries for one fact). A follower leaves it to the leader, and so the new leader when it takes
   * over. Resolves false once the server stops.
   */
  private setClusterVersion(): Promise<boolean> {
    if (this.cluster.version !== "" || !this.raft.rawNode.isLeader()) return Promise.resolve(!this.stopping);
    return this.settingVersion ??= this.proposeUntilApplied({
      $typeName: "etcdserverpb.InternalRaftRequest",
      ID: 0n,
      clusterVersionSet: { $typeName: "etcdserverpb.ClusterVersionSetRequest", ver: ETCD_CLUSTER_VERSION },
    }, "update cluster version").finally(() => this.settingVersion = undefined);
  }

  /**
   * Proposes req until it is applied, as etcd's publish loop does: a proposal that timed out, found no leader or was
   * refused for the moment (a member still applying a backlog) is logged and made again, after a pause so that a
   * refusal on the spot does not spin. False once the server stops. (A joining member that got a snapshot under a
   * fault run timed out publishing, and used to stop.)
   */
  private async proposeUntilApplied(req: InternalRaftRequest, what: string, fields: LogFields = {}): Promise<boolean> {
    for (;;) {
      try {
        await this.propose(req);
        return true;
      } catch (err) {
        if (this.stopping) return false;
        this.logger.warn(`failed to ${what}`, {
          "local-member-id": this.id.toString(16),
          ...fields,
          error: String(err),
        });
        await new Promise((r) => setTimeout(r, PROPOSE_RETRY_MS));
      }
    }
  }

  // ---- client API -------------------------------------------------------------------

  async range(req: RangeRequest): Promise<RangeResponse> {
    check(checkRangeRequest(req));
    if (!req.serializable) await this.linearizableReadNotify();
    return this.withHeader(this.applier.range(req));
  }

  put(req: PutRequest): Promise<PutResponse> {
    const err = checkPutRequest(req);
    if (err !== null) return Promise.reject(err);
    if (!this.applier.quotaAvailable(costPut(req))) return this.refuseOverQuota();
    return this.propose({ $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, put: req }) as Promise<PutResponse>;
  }

  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const err = checkDeleteRequest(req);
    if (err !== null) return Promise.reject(err);
    return this.propose(
      { $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, deleteRange: req },
    ) as Promise<DeleteRangeResponse>;
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    check(validateTxnRequest(req, this.cfg.maxTxnOps));
    if (isTxnReadonly(req)) {
      if (!isTxnSerializable(req)) await this.linearizableReadNotify();
      return this.withHeader(this.applier.txn(req));
    }
    if (!this.applier.quotaAvailable(costTxn(req))) return await this.refuseOverQuota();
    return await this.propose({ $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, txn: req }) as TxnResponse;
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const r = await this.propose({ $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, compaction: req }) as {
      response: CompactionResponse;
      physical: Promise<void>;
    };
    // the compaction goes on in the background; physical=true waits until it is durable
    if (req.physical) await r.physical;
    return this.withHeader(r.response);
  }

  /** Maintenance.Alarm: every action, GET too, goes through raft, as etcd's. */
  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    return await this.propose({ $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, alarm: req }) as AlarmResponse;
  }

  /** The raised alarms, of every type. */
  alarmList(): AlarmMember[] {
    return this.alarms.get(AlarmType.NONE);
  }

  /** A raft message from another member (etcd's Process): stepped in, for the raft loop to act on. */
  receive(m: Message): void {
    if (this.stopping || this.linkFaults?.dropFrom(m.from)) return;
    try {
      this.raft.rawNode.step(m);
    } catch (err) {
      // from a node raft does not know (removed, or not yet added): dropped, as etcd's raft drops it
      this.logger.debug("dropped raft message", { from: m.from.toString(16), error: String(err) });
      return;
    }
    this.raft.kick();
  }

  // ---- leases ------------------------------------------------------------------------

  /** A grant without an ID gets one from the request ID generator: positive int64, unique across members. */
  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    while (req.ID === 0n) req.ID = this.reqIds.nextBig() & 0x7fff_ffff_ffff_ffffn;
    if (!this.applier.quotaAvailable(LEASE_QUOTA_COST)) return await this.refuseOverQuota();
    return await this.propose(
      { $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, leaseGrant: req },
    ) as LeaseGrantResponse;
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return await this.propose(
      { $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, leaseRevoke: req },
    ) as LeaseRevokeResponse;
  }

  /**
   * A keep-alive: renewed by the leader's lessor, not through raft (a follower forwards it to the leader's peer URL);
   * resolves with the TTL (0: no such lease, as etcd answers). The leader first applies what was committed, so a
   * lease granted just before is found.
   */
  async leaseRenew(id: bigint): Promise<number> {
    try {
      if (this.raft.rawNode.isLeader()) return await this.renewAsLeader(id);
      return await this.toLeader((url, signal) => renewHTTP(url, id, signal));
    } catch (err) {
      if (err === ErrGRPCLeaseNotFound) return 0;
      throw err;
    }
  }

  /**
   * A renewal on this member as the leader, once a read index round has shown it still leads (etcd 3.5.8's
   * ensureLeadership; etcd 3.4 renews at once). A leader cut off from the others believes it leads until its check
   * quorum steps it down, up to two election timeouts: a renewal it answered then is unknown to the leader elected
   * meanwhile, which lets the lease expire within its TTL (the fault suite found it: seed 18, a keep-alive answered
   * 500 ms before the lease could expire said it was gone). The answer now waits for a quorum, or fails.
   */
  private async renewAsLeader(id: bigint): Promise<number> {
    await this.leaderLessor();
    await this.linearizableReadNotify();
    if (!this.raft.rawNode.isLeader()) throw ErrGRPCNoLeader;
    return await this.renewHere(id);
  }

  /** On this member's lessor, the primary: throws ErrGRPCLeaseNotFound, or NoLeader when it is not the primary. */
  private async renewHere(id: bigint): Promise<number> {
    try {
      const ttl = await this.lessor.renew(id);
      this.metrics.leaseRenewed.inc();
      return ttl;
    } catch (err) {
      if (err instanceof NotPrimaryError) throw ErrGRPCNoLeader;
      throw err;
    }
  }

  /**
   * Remaining TTL as the leader's lessor has it (etcd's LeaseTimeToLive; a follower asks the leader); TTL -1 for a
   * lease that does not exist.
   */
  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    let resp: LeaseTimeToLiveResponse | undefined;
    try {
      if (this.raft.rawNode.isLeader()) {
        await this.leaderLessor();
        resp = this.timeToLiveHere(req);
      } else {
        resp = await this.toLeader((url, signal) => timeToLiveHTTP(url, req, signal));
      }
    } catch (err) {
      if (err !== ErrGRPCLeaseNotFound) throw err;
    }
    return {
      $typeName: "etcdserverpb.LeaseTimeToLiveResponse",
      ID: req.ID,
      TTL: -1n,
      grantedTTL: 0n,
      keys: [],
      ...resp,
      header: this.header(this.b.store.rev),
    };
  }

  /** From this member's lessor; undefined when the lease does not exist. */
  private timeToLiveHere(req: LeaseTimeToLiveRequest): LeaseTimeToLiveResponse | undefined {
    const l = this.lessor.lookup(req.ID);
    if (l === undefined) return undefined;
    return {
      $typeName: "etcdserverpb.LeaseTimeToLiveResponse",
      ID: req.ID,
      TTL: BigInt(Math.trunc(this.lessor.remainingMs(l) / 1000)),
      grantedTTL: BigInt(l.ttl),
      keys: req.keys ? l.sortedKeys() : [],
    };
  }

  /**
   * Calls the leader through its peer URLs until it answers, there is no leader (NoLeader after the wait for one), or
   * the request times out; lease-not-found is an answer.
   */
  private async toLeader<T>(call: (peerUrl: string, signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.reqTimeoutMs;
    for (;;) {
      if (this.stopping) throw ErrGRPCStopped;
      if (this.raft.lead === NONE) await this.waitLeader(deadline);
      for (const url of this.cluster.members.get(this.raft.lead)?.peerUrls ?? []) {
        try {
          return await call(url, AbortSignal.timeout(Math.max(1, deadline - performance.now())));
        } catch (err) {
          if (err === ErrGRPCLeaseNotFound) throw err;
        }
      }
      if (performance.now() > deadline) throw ErrGRPCTimeout;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The peer handler of leases forwarded here (server/lease/lease_http.ts). */
  readonly leaseHttp = leaseHttpHandler({
    renew: (id) => this.renewAsLeader(id),
    timeToLive: (req) => Promise.resolve(this.timeToLiveHere(req)),
    // etcd's leasehttp waits 1 s at most
    caughtUp: () => this.waitApplied(this.raft.commitIndex, 1000),
  });

  leaseLeases(): LeaseLeasesResponse {
    return {
      $typeName: "etcdserverpb.LeaseLeasesResponse",
      header: this.header(this.b.store.rev),
      leases: this.lessor.leases().map((l) => ({ $typeName: "etcdserverpb.LeaseStatus", ID: l.id })),
    };
  }

  /** This member leads (its lessor is the primary) and has applied what was committed (etcd's waitAppliedIndex). */
  private async leaderLessor(): Promise<void> {
    if (this.stopping) throw ErrGRPCStopped;
    if (!this.raft.rawNode.isLeader()) throw ErrGRPCNoLeader;
    await this.waitApplied(this.raft.commitIndex);
    if (!this.lessor.isPrimary) throw ErrGRPCNoLeader;
  }

  /** Resolves true once `index` is applied (etcd's ApplyWait), false if timeoutMs passes first. */
  private async waitApplied(index: number, timeoutMs = Infinity): Promise<boolean> {
    if (this.appliedIndex >= index) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const applied = new Promise<boolean>((resolve) =>
      this.appliedWaiters.push({ index, resolve: () => resolve(true) })
    );
    const late = timeoutMs === Infinity
      ? undefined
      : new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
    const ok = await (late === undefined ? applied : Promise.race([applied, late]));
    clearTimeout(timer);
    return ok;
  }

  private notifyApplied(): void {
    const still = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.appliedIndex) w.resolve();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  /** A write over quota raises NOSPACE before it is refused (etcd's quotaAlarmer; a failed raise is not its error). */
  private refuseOverQuota(): Promise<never> {
    return this.raiseNoSpace().then(() => Promise.reject(ErrGRPCNoSpace), () => Promise.reject(ErrGRPCNoSpace));
  }

  private raiseNoSpace(): Promise<unknown> {
    return this.alarm({
      $typeName: "etcdserverpb.AlarmRequest",
      action: AlarmRequest_AlarmAction.ACTIVATE,
      memberID: this.id,
      alarm: AlarmType.NOSPACE,
    });
  }

  // ---- proposals and apply ----------------------------------------------------------

  /**
   * Proposes `req` (its ID is assigned here) and resolves with its apply result. Not async, and errors come back as
   * rejections: the write path allocates no coroutine, and the proposer's request itself is what applying it uses.
   * The request timeout runs from here, through a wait for a leader to its apply, as etcd's one context covers both.
   */
  private propose(req: InternalRaftRequest): Promise<unknown> {
    try {
      if (this.stopping) throw ErrGRPCStopped;
      if (this.raft.commitIndex - this.appliedIndex > maxGapBetweenApplyAndCommit) {
        throw ErrGRPCRequestTooManyRequests;
      }
      const deadline = performance.now() + this.reqTimeoutMs;
      if (!this.canForward()) return this.waitForwardable(deadline).then(() => this.proposeNow(req, deadline));
      return this.proposeNow(req, deadline);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private proposeNow(req: InternalRaftRequest, deadline: number): Promise<unknown> {
    const id = this.reqIds.next();
    req.ID = this.reqIds.full(id);
    const data = encodeRequest(req);
    if (data.length > this.cfg.maxRequestBytes) throw ErrGRPCRequestTooLarge;
    const result = this.wait.register(id, deadline, req);
    this.metrics.proposalsPending.inc();
    try {
      this.raft.rawNode.propose(data);
    } catch (err) {
      this.wait.fail(id, err);
    }
    this.raft.kick();
    return result;
  }

  /**
   * Whether a proposal made now reaches a leader: there is one (etcd's raft node takes no proposal without), and it is
   * this member or one it reaches. A follower whose leader stopped answering (its streams closed, a send failed: a
   * leader killed) would forward the proposal to be lost, and the request would time out, while the leader elected a
   * moment later would have taken it.
   */
  private canForward(): boolean {
    const lead = this.raft.lead;
    return lead !== NONE && (lead === this.id || this.transport.activeSince(lead) > 0);
  }

  /**
   * The leader's peer port refuses connections (its streams to this member broke, and a dial found nothing
   * listening): its process is gone. Raft alone would learn it an election timeout (1-2 s) after its last heartbeat;
   * instead this member forgets it, so that it grants votes at once, and the surviving voters campaign one after the
   * other in the order of their IDs, a heartbeat interval apart, until one's campaign is granted: the first whose log
   * is up to date wins (etcd raft's ForgetLeader, with the transport as the failure detector). A quorum must
   * have forgotten the leader for a campaign to win, so one member wrong about it disrupts nothing.
   */
  private leaderGone(id: NodeId): void {
    const { softState, hardState } = this.raft.rawNode.status();
    if (this.stopping || softState.lead !== id || id === this.id) return;
    this.logger.warn("leader's peer URL refuses connections; forgetting it to elect a new one at once", {
      "local-member-id": this.id.toString(16),
      "leader-member-id": id.toString(16),
      term: hardState.term,
    });
    this.raft.rawNode.forgetLeader();
    this.raft.kick();
    if (this.wait.size > 0) this.lostWithLeader = { term: hardState.term, ids: this.wait.ids() };
    const voters = [...new Set([...this.confState.voters, ...this.confState.votersOutgoing])]
      .filter((v) => v !== id && (v === this.id || this.transport.activeSince(v) > 0))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const rank = voters.indexOf(this.id);
    if (rank < 0) return;
    const term = hardState.term;
    setTimeout(() => {
      const { hardState: hs, softState: ss } = this.raft.rawNode.status();
      // a leader heard from, or a vote given in a later term (an election under way): leave it to raft. A pre-vote
      // campaign moves no term when it fails, so one this member refused (its log further ahead) or ignored (it had
      // not yet forgotten the leader) leaves it free to campaign now.
      if (this.stopping || ss.lead !== NONE || (hs.term !== term && hs.vote !== NONE)) return;
      this.raft.rawNode.preCampaign();
      this.raft.kick();
    }, rank * this.cfg.heartbeatIntervalMs);
  }

  /** Holds a proposal, up to its request's deadline, until it can go to a leader (see canForward). */
  private async waitForwardable(deadline: number): Promise<void> {
    await this.waitFor(() => this.canForward(), deadline);
    if (this.raft.lead === NONE) throw ErrGRPCNoLeader;
    if (!this.canForward()) throw ErrGRPCTimeout;
  }

  /** Waits for a leader up to the request's deadline (etcd blocks proposals the same way). */
  private async waitLeader(deadline: number): Promise<void> {
    await this.waitFor(() => this.raft.lead !== NONE, deadline);
    if (this.raft.lead === NONE) throw ErrGRPCNoLeader;
  }

  /** Waits, up to `deadline`, until `done()` holds: checked when a leader is elected or its peer answers. */
  private async waitFor(done: () => boolean, deadline: number): Promise<void> {
    while (!done() && !this.stopping) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.leaderWaiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    if (this.stopping) throw ErrGRPCStopped;
  }

  private wakeLeaderWaiters(): void {
    for (const w of this.leaderWaiters) w();
    this.leaderWaiters = [];
  }

  private async applyAll(entries: Entry[], snap: Snapshot | undefined): Promise<void> {
    if (!this.storeIsReady) {
      const restored = await this.localRestore;
      if (restored === undefined) throw new Error("apply: the server has not started");
      if (!restored && snap === undefined) {
        // superseded: the leader's snapshot, in a later job, holds what these entries did
        const last = entries.at(-1)?.index ?? 0;
        if (last > this.supersededBy) {
          throw new Error(`apply: entry ${last} is past the snapshot ${this.supersededBy} that superseded the restore`);
        }
        return;
      }
    }
    if (snap !== undefined && snap.metadata.index > this.appliedIndex) await this.applySnapshot(snap);
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue;
      this.applyEntry(e);
      this.appliedIndex = e.index;
      this.metrics.proposalsApplied.inc();
    }
    this.metrics.proposalsCommitted.set(this.raft.commitIndex);
    const lost = this.lostWithLeader;
    if (lost !== undefined && entries.length > 0 && entries[entries.length - 1].term > lost.term) {
      this.lostWithLeader = undefined;
      for (const id of lost.ids) this.wait.fail(id, ErrGRPCTimeoutDueToLeaderFail);
    }
    this.reads.onApplied();
    if (this.appliedWaiters.length > 0) this.notifyApplied();
    if (this.appliedIndex - this.snapshotIndex > this.cfg.snapshotCount && !this.snapshotting) {
      this.logger.info("triggering snapshot", {
        "local-member-id": this.id.toString(16),
        "local-member-applied-index": this.appliedIndex,
        "local-member-snapshot-index": this.snapshotIndex,
        "local-member-snapshot-count": this.cfg.snapshotCount,
      });
      // what it holds is taken now; the backend's commit and its files are written while applying goes on, as in
      // etcd (a restarted member's catch-up crossed one: its apply was held ~60-80 ms)
      this.snapshotDone = this.snapshot(this.appliedIndex, this.confState, this.cluster.snapshotData());
    }
  }

  private applyEntry(e: Entry): void {
    const store = this.b.store;
    // Entries the backend already holds (it commits the consistent index with the data)
    // are only replayed for raft's and membership's sake.
    const alreadyInBackend = e.index <= store.consistentIndex;
    if (isConfChange(e)) {
      this.applyConfChange(e);
      if (!alreadyInBackend) store.setConsistentIndex(e.index, e.term);
      return;
    }
    if (e.data.length === 0) {
      // the empty entry a new leader appends: once it is applied, the leader's lessor takes over the leases, their
      // countdowns extended by an election timeout so that clients can find the new leader (etcd's Promote)
      if (!alreadyInBackend) store.setConsistentIndex(e.index, e.term);
      if (this.raft.rawNode.isLeader()) {
        this.lessor.promote(this.cfg.electionTimeoutMs);
        // after this apply: a proposal is not made from within one
        if (this.cluster.version === "") setTimeout(() => void this.setClusterVersion(), 0);
      }
      return;
    }
    // a restart replays thousands of these (see Bootstrapped.snapshot), proposed before it: no proposal of this run
    // waits for one
    if (alreadyInBackend && !this.isMembershipEntry(e)) return;
    const id = peekRequestId(e.data, this.reqIds.prefix);
    const req = this.wait.context(id) ?? decodeRequest(e.data);
    if (applyMembershipRecord(this.cluster, req, this.logger)) {
      if (!alreadyInBackend) store.setConsistentIndex(e.index, e.term);
      this.wait.trigger(id, {});
      return;
    }
    store.setConsistentIndex(e.index, e.term);
    let resp: { header?: ResponseHeader };
    try {
      resp = this.applyRequest(req);
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      if (err === ErrGRPCNoSpace && !this.alarms.has(AlarmType.NOSPACE)) {
        // applied over quota: raise the alarm, then answer (etcd's applyEntryNormal)
        this.logger.warn("message exceeded backend quota; raising alarm", {
          "quota-size-bytes": this.cfg.quotaBackendBytes,
          error: err.message,
        });
        void this.raiseNoSpace().finally(() => this.wait.fail(id, err));
        return;
      }
      return this.wait.fail(id, err);
    }
    this.wait.trigger(id, "header" in resp ? this.withHeader(resp) : resp);
  }

  /** Whether `e` records membership; for a committed entry the restart replayed, as the replay found (Bootstrapped.replayed). */
  private isMembershipEntry(e: Entry): boolean {
    const r = this.b.replayed;
    return r !== undefined && e.index <= r.through ? r.membership.has(e.index) : isMembershipRecord(e.data);
  }

  private applyRequest(req: InternalRaftRequest): object {
    if (req.put !== undefined) return this.applier.put(req.put);
    if (req.deleteRange !== undefined) return this.applier.deleteRange(req.deleteRange);
    if (req.txn !== undefined) return this.applier.txn(req.txn);
    if (req.compaction !== undefined) {
      const r = this.applier.compaction(req.compaction);
      r.physical.catch((err) => this.logger.warn("compaction failed", { error: String(err) }));
      return r;
    }
    if (req.range !== undefined) return this.applier.range(req.range);
    if (req.alarm !== undefined) return this.applyAlarm(req.alarm);
    if (req.leaseGrant !== undefined) {
      const r = applyLeaseGrant(this.lessor, this.applier, req.leaseGrant);
      this.metrics.leaseGranted.inc();
      return r;
    }
    if (req.leaseRevoke !== undefined) {
      const r = applyLeaseRevoke(this.lessor, this.applier, req.leaseRevoke);
      this.metrics.leaseRevoked.inc();
      return r;
    }
    if (req.leaseCheckpoint !== undefined) return applyLeaseCheckpoint(this.lessor, this.applier, req.leaseCheckpoint);
    throw new RpcError(12, "etcdserver: request kind is not supported yet");
  }

  /** etcd's applierV3backend.Alarm. Its response has no header. */
  private applyAlarm(ar: AlarmRequest): AlarmResponse {
    const resp: AlarmResponse = { $typeName: "etcdserverpb.AlarmResponse", alarms: [] };
    const type = AlarmType[ar.alarm] ?? String(ar.alarm);
    switch (ar.action) {
      case AlarmRequest_AlarmAction.GET:
        resp.alarms = this.alarms.get(ar.alarm);
        return resp;
      case AlarmRequest_AlarmAction.ACTIVATE: {
        const firstOfType = !this.alarms.has(ar.alarm);
        const m = this.alarms.activate(ar.memberID, ar.alarm);
        resp.alarms.push(m);
        if (firstOfType) this.logger.warn("alarm raised", { alarm: type, from: m.memberID.toString(16) });
        break;
      }
      case AlarmRequest_AlarmAction.DEACTIVATE: {
        const m = this.alarms.deactivate(ar.memberID, ar.alarm);
        if (m === undefined) return resp;
        resp.alarms.push(m);
        if (!this.alarms.has(ar.alarm)) {
          this.logger.warn("alarm disarmed", { alarm: type, from: m.memberID.toString(16) });
        }
        break;
      }
    }
    this.capApplier();
    return resp;
  }

  /** NOSPACE refuses writes that cost quota, CORRUPT every write, for as long as one member's alarm is raised. */
  private capApplier(): void {
    this.applier.noSpaceAlarm = this.alarms.has(AlarmType.NOSPACE);
    this.applier.corruptAlarm = this.alarms.has(AlarmType.CORRUPT);
  }

  /**
   * etcd's applyConfChange: a change the membership refuses (ValidateConfigurationChange) is applied by raft as a
   * change of no node on every member alike, and its proposer gets the error; an accepted one changes raft's
   * configuration and the membership, and its proposer gets the members.
   */
  private applyConfChange(e: Entry): void {
    const cc = e.type === EntryType.ConfChange ? decodeConfChange(e.data) : decodeConfChangeV2(e.data);
    if (!("nodeId" in cc)) {
      // etcd 3.4 proposes no joint (V2) changes: raft applies one as it is
      this.confState = this.raft.rawNode.applyConfChange(cc);
      return;
    }
    const waiter = cc.id === 0n ? -1 : this.reqIds.ownSuffix(cc.id);
    const ctx = cc.context !== undefined && cc.context.length > 0
      ? parseMemberContext(cc.context, cc.nodeId)
      : undefined;
    if (ctx !== undefined && ctx.id !== cc.nodeId) {
      throw new Error(`conf change of member ${cc.nodeId.toString(16)} carries member ${ctx.id.toString(16)}`);
    }
    const err = this.cluster.validateConfChange(cc.type, cc.nodeId, ctx);
    if (err !== undefined) {
      this.raft.rawNode.applyConfChange({ ...cc, nodeId: NONE });
      if (waiter >= 0) this.wait.fail(waiter, err);
      return;
    }
    this.confState = this.raft.rawNode.applyConfChange(cc);
    const fields = { "cluster-id": this.cluster.clusterId.toString(16), "local-member-id": this.id.toString(16) };
    const hex = cc.nodeId.toString(16);
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode:
        if (ctx?.isPromote) {
          this.cluster.promote(cc.nodeId);
          this.logger.info("promote member", { ...fields, "promoted-member-id": hex });
          break;
        }
        this.cluster.add({
          id: cc.nodeId,
          name: ctx?.name ?? "",
          peerUrls: ctx?.peerUrls ?? [],
          clientUrls: ctx?.clientUrls ?? [],
          isLearner: cc.type === ConfChangeType.AddLearnerNode,
        });
        this.logger.info("added member", { ...fields, "added-peer-id": hex, "added-peer-peer-urls": ctx?.peerUrls });
        break;
      case ConfChangeType.RemoveNode:
        this.cluster.remove(cc.nodeId);
        this.logger.info("removed member", { ...fields, "removed-remote-peer-id": hex });
        if (cc.nodeId === this.id) this.stopRemoved();
        break;
      case ConfChangeType.UpdateNode:
        this.cluster.updatePeerUrls(cc.nodeId, ctx?.peerUrls ?? []);
        this.logger.info("updated member", {
          ...fields,
          "updated-remote-peer-id": hex,
          "updated-remote-peer-urls": ctx?.peerUrls,
        });
        break;
    }
    this.syncLearner();
    // a member restarting learns its peers here, replaying its log: its streams are dialed now, not at the next probe
    this.transport.syncPeers();
    if (waiter >= 0) this.wait.trigger(waiter, this.cluster.list());
  }

  // ---- the peer port ------------------------------------------------------------------

  /** Everything on the peer port: raft traffic, leases, membership and hashes for the other members, tooling. */
  servePeer(req: PeerRequest, res: PeerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === RAFT_PREFIX) return this.peerPipeline(req, res);
    if (path === RAFT_SNAPSHOT_PREFIX) return this.peerSnapshot(req, res);
    if (path.startsWith(`${STREAM_PREFIX}/`)) return this.peerStream(req, res);
    if (path === LEASE_PREFIX || path === LEASE_INTERNAL_PREFIX || path === PEER_HASHKV_PATH) {
      // they read the leases or the store: not before those hold this member's state
      if (!this.storeIsReady) return void this.storeReady.promise.then(() => this.servePeer(req, res));
      return path === PEER_HASHKV_PATH ? this.peerHashKV(req, res) : this.leaseHttp(req, res);
    }
    if (path === MEMBERS_PREFIX || path.startsWith(MEMBER_PROMOTE_PREFIX)) return this.peerMembers(req, res);
    if (path === RAFT_PROBING_PREFIX) return probingHandler(req, res);
    if (path === "/version") {
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: this.cluster.version || "not_decided" }),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found\n");
  }

  // ---- corruption checks -------------------------------------------------------------

  private corruptCheckView(): CorruptCheckView {
    return {
      self: this.id,
      members: () => this.cluster.list(),
      hashByRev: (rev) => this.b.store.hashByRev(rev),
      timeoutMs: this.reqTimeoutMs,
      logger: this.logger,
    };
  }

  /** --experimental-initial-corrupt-check: throws when a peer holds other data at this member's revision. */
  checkInitialHashKV(): Promise<void> {
    return checkInitialHashKV(this.corruptCheckView());
  }

  /** --experimental-corrupt-check-time: the leader compares every member's HashKV each period (etcd's monitorKVHash). */
  private startCorruptionMonitor(): void {
    const period = this.cfg.corruptCheckTimeMs;
    if (period === 0) return;
    this.logger.info("enabled corruption checking", {
      "local-member-id": this.id.toString(16),
      interval: `${period / 1000}s`,
    });
    let running = false;
    this.corruptMonitor = setInterval(async () => {
      if (running || !this.raft.rawNode.isLeader() || this.alarms.has(AlarmType.CORRUPT)) return;
      running = true;
      try {
        const corrupt = await checkHashKV(this.corruptCheckView(), () => this.linearizableReadNotify());
        // etcd raises one alarm per pass
        if (corrupt.length > 0 && !this.stopping) {
          await this.alarm({
            $typeName: "etcdserverpb.AlarmRequest",
            action: AlarmRequest_AlarmAction.ACTIVATE,
            memberID: corrupt[0],
            alarm: AlarmType.CORRUPT,
          });
        }
      } catch (err) {
        this.logger.warn("failed to check hash KV", { error: String(err) });
      } finally {
        running = false;
      }
    }, period);
  }

  // ---- membership --------------------------------------------------------------------

  private reconfigureView(): ReconfigureView {
    return {
      cluster: this.cluster,
      self: this.id,
      strict: this.cfg.strictReconfigCheck,
      activeSince: (id) => this.transport.activeSince(id),
      now: Date.now,
    };
  }

  /** etcd's AddMember: a new member (a learner if asked), its ID from its peer URLs and the time. */
  async addMember(peerUrls: string[], isLearner: boolean): Promise<{ member: Member; members: Member[] }> {
    const id = computeMemberId(peerUrls, "", Math.floor(Date.now() / 1000));
    const member: Member = { id, name: "", peerUrls, clientUrls: [], isLearner };
    throwIf(mayAddMember(this.reconfigureView(), isLearner));
    const type = isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
    return { member, members: await this.configure(type, id, memberJSON(member)) };
  }

  async removeMember(id: NodeId): Promise<Member[]> {
    throwIf(mayRemoveMember(this.reconfigureView(), id));
    return await this.configure(ConfChangeType.RemoveNode, id, undefined);
  }

  async updateMember(id: NodeId, peerUrls: string[]): Promise<Member[]> {
    return await this.configure(ConfChangeType.UpdateNode, id, memberJSON({ id, peerUrls }));
  }

  /**
   * etcd's PromoteMember: only the leader knows whether the learner has caught up, so a follower asks the leader
   * (`POST /members/promote/<id>` on its peer URL) until the request times out.
   */
  async promoteMember(id: NodeId): Promise<Member[]> {
    const err = mayPromoteMember(this.reconfigureView(), this.raft.rawNode.status(), id);
    if (err === undefined) {
      return await this.configure(ConfChangeType.AddNode, id, memberJSON({ id, peerUrls: null }, true));
    }
    if (err !== ErrGRPCNotLeader) throw err;
    const deadline = performance.now() + this.reqTimeoutMs;
    while (performance.now() < deadline && !this.stopping) {
      if (this.raft.lead === NONE) await this.waitLeader(deadline);
      for (const url of this.cluster.members.get(this.raft.lead)?.peerUrls ?? []) {
        const members = await promoteOnLeader(url, id, deadline - performance.now());
        if (members !== undefined) return members;
      }
      await new Promise((r) => setTimeout(r, this.cfg.heartbeatIntervalMs));
    }
    throw ErrGRPCTimeout;
  }

  /**
   * Proposes a configuration change and resolves with the members once it is applied (etcd's configure); a change
   * the membership refuses rejects with its error.
   */
  private async configure(type: ConfChangeType, nodeId: NodeId, context: string | undefined): Promise<Member[]> {
    if (this.stopping) throw ErrGRPCStopped;
    const deadline = performance.now() + this.reqTimeoutMs;
    if (!this.canForward()) await this.waitForwardable(deadline);
    const id = this.reqIds.next();
    const result = this.wait.register(id, deadline, undefined);
    this.metrics.proposalsPending.inc();
    try {
      this.raft.rawNode.proposeConfChange({
        id: this.reqIds.full(id),
        type,
        nodeId,
        context: context === undefined ? undefined : new TextEncoder().encode(context),
      });
    } catch (err) {
      this.wait.fail(id, err);
    }
    this.raft.kick();
    return (await result) as Member[];
  }

  /** Whether this member is a learner (it then serves only Status and serializable ranges). */
  get isLearner(): boolean {
    return this.learner;
  }

  /** Keeps `learner` to the membership after it changes (a conf change applied, a snapshot installed). */
  private syncLearner(): void {
    this.learner = this.cluster.members.get(this.id)?.isLearner ?? false;
  }

  /**
   * This member was removed from the cluster (applied, or a peer answered 410): it stops after a moment, so that
   * the change reaches the others first (etcd's stopWithDelay), and says its data dir is of no more use.
   */
  private stopRemoved(): void {
    if (this.removedStop) return;
    this.removedStop = true;
    setTimeout(() => {
      this.logger.warn("server error", { error: MEMBER_REMOVED });
      this.logger.warn("data-dir used by this member must be removed", {});
      void this.stop();
    }, 1000);
  }

  // ---- snapshots ---------------------------------------------------------------------

  /** Raft's messages to the peers; a snapshot goes as etcd sends it, merged with the backend, between two applies. */
  private send(msgs: Message[]): void {
    let snaps: Message[] | undefined;
    for (const m of msgs) if (m.type === MessageType.MsgSnap) (snaps ??= []).push(m);
    if (snaps === undefined) return this.transport.send(msgs);
    this.transport.send(msgs.filter((m) => m.type !== MessageType.MsgSnap));
    for (const m of snaps) this.scheduler.schedule(() => this.sendMergedSnapshot(m));
  }

  /**
   * etcd's createMergedSnapshotMessage and sendMergedSnap: the backend as it stands between two applies (committed,
   * its file's length taken) and a raft snapshot of the applied index, the membership as its data, streamed to the
   * follower while applying goes on. Raft hears how it went. A detcd follower gets the backend's log file; an etcd
   * one (or one not heard from yet) a bbolt file made from it, as etcd's backend is.
   */
  private async sendMergedSnapshot(m: Message): Promise<void> {
    await this.storeReady.promise;
    const index = this.appliedIndex;
    await this.b.store.commit();
    const db = this.transport.takesDetcdBackend(m.to)
      ? fileSnapshotBody(await this.b.backend.snapshotFile())
      : boltSnapshotBody(this.b.backend.boltImage());
    const snapshot: Snapshot = {
      metadata: { index, term: this.b.storage.term(index), confState: this.confState },
      data: this.cluster.snapshotData(),
    };
    this.inflightSnapshots++;
    void this.transport.sendSnapshot({ ...m, snapshot }, db).then((ok) => {
      this.inflightSnapshots--;
      if (this.stopping) return;
      if (!ok) this.raft.rawNode.reportUnreachable(m.to);
      this.raft.rawNode.reportSnapshot(m.to, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
      this.raft.kick();
    });
  }

  /**
   * A follower installs its leader's snapshot (etcd's applySnapshot): raft has saved it, the backend that came with
   * it is in the snapshot directory. That backend takes the old one's place, and the leases, the store (its watchers
   * then catch up from the new history), the alarms and the membership are rebuilt from it.
   */
  private async applySnapshot(snap: Snapshot): Promise<void> {
    const index = snap.metadata.index;
    await this.snapshotDone; // the local one ends before the backend it commits is replaced
    this.logger.info("applying snapshot", {
      "incoming-leader-snapshot-index": index,
      "current-applied-index": this.appliedIndex,
    });
    await this.installBackend(index);
    if (snap.data.length > 0) this.cluster.recover(RaftCluster.parseSnapshotData(snap.data, this.cluster.clusterId));
    this.syncLearner();
    this.confState = snap.metadata.confState;
    this.appliedIndex = this.snapshotIndex = index;
    for (const name of await this.b.snapshotter.releaseDbsUpTo(index)) {
      this.logger.info("removed an unused database snapshot", { path: `${this.b.snapshotter.dir}/${name}` });
    }
    this.markStoreReady();
    this.logger.info("applied snapshot", { "applied-index": index, "current-revision": this.b.store.rev });
  }

  /**
   * Replays this member's backend and restores the store, leases and alarms from it, while raft already runs (see
   * start()). A leader's snapshot that arrives meanwhile supersedes it: the replay is abandoned (resolves false), as
   * the snapshot's backend replaces the state anyway. A member stopped between saving a leader's snapshot and
   * installing its backend installs it now (etcd's recoverSnapshotBackend).
   */
  private async restoreLocal(): Promise<boolean> {
    const be = this.b.backend, t0 = performance.now();
    // tests hold the restore here, as a snapshot being received holds it
    const held = failpointHold("beforeLocalRestore");
    if (held !== undefined) {
      this.pauseRestore();
      void held.then(() => this.resumeRestore());
    }
    try {
      await be.load(() => {
        if (this.supersededBy > 0) throw new Error("superseded");
        return this.restorePause?.promise ?? new Promise<void>((resolve) => setImmediate(resolve));
      });
    } catch (err) {
      if (this.supersededBy === 0) throw err;
      this.logger.info("skipped restoring the backend: a leader's snapshot replaces it", {
        "incoming-leader-snapshot-index": this.supersededBy,
      });
      return false;
    }
    this.recoverFrom(be);
    this.logger.info("restored the store from the backend", {
      "current-revision": this.b.store.rev,
      "consistent-index": this.b.store.consistentIndex,
      took: `${Math.round(performance.now() - t0)}ms`,
    });
    // raft's log starts after what the backend's end said it holds (see Bootstrapped.snapshot): never less
    const applied = this.b.replayed?.applied ?? 0;
    if (this.b.store.consistentIndex < applied) {
      throw new Error(
        `restore: the backend's consistent index ${this.b.store.consistentIndex} is behind the ${applied} its end gave`,
      );
    }
    const snapIndex = this.b.snapshot?.metadata.index ?? 0;
    if (snapIndex > this.b.store.consistentIndex) {
      this.logger.info("installing the database snapshot received before the restart", { "snapshot-index": snapIndex });
      await this.installBackend(snapIndex);
    }
    for (const name of await this.b.snapshotter.releaseDbsUpTo(snapIndex)) {
      this.logger.info("removed an unused database snapshot", { path: `${this.b.snapshotter.dir}/${name}` });
    }
    this.markStoreReady();
    return true;
  }

  /** Puts the backend received with the snapshot at `index` in place of the current one, and recovers from it. */
  private async installBackend(index: number): Promise<void> {
    await this.b.store.close();
    await this.b.backend.close();
    this.recoverFrom(this.b.backend = await this.b.installSnapshotDb(index));
  }

  /** The leases, the store (its watchers then catch up from the new history) and the alarms rebuilt from `be`. */
  private recoverFrom(be: Backend): void {
    this.lessor.recover(be);
    this.b.store.restore(be);
    this.alarms.recover(be);
    this.capApplier();
    this.watchable.restored();
  }

  private pauseRestore(): void {
    if (this.storeIsReady || this.supersededBy > 0) return;
    if (this.restorePauses++ === 0) {
      this.restorePause = Promise.withResolvers();
      this.restorePause.promise.catch(() => {}); // rejected when superseded, maybe while nobody waits
    }
  }

  private resumeRestore(): void {
    if (this.restorePauses === 0 || --this.restorePauses > 0) return;
    this.restorePause?.resolve();
    this.restorePause = undefined;
  }

  /** A leader's snapshot replaces whatever the local restore would give: it ends at its next read. */
  private supersedeRestore(index: number): void {
    this.supersededBy = Math.max(this.supersededBy, index);
    this.restorePause?.reject(new Error("superseded"));
    this.restorePause = undefined;
    this.restorePauses = 0;
  }

  private markStoreReady(): void {
    this.storeIsReady = true;
    this.storeReady.resolve();
  }

  /**
   * Makes the backend durable up to applied index `index` (or later), records a raft snapshot of the membership there
   * (`confState`, `data`, as they were at `index`), and compacts the raft log behind it (etcd's snapshot()). A failure
   * is fatal.
   */
  private async snapshot(index: number, confState: ConfState, data: Uint8Array): Promise<void> {
    this.snapshotting = true;
    try {
      await failpointHold("beforeSnapshotCommit");
      await this.b.store.commit();
      let saved = false;
      await this.raft.exclusive(async () => {
        // raft took a newer snapshot from the leader meanwhile (etcd: ErrSnapOutOfDate, ignored)
        if (index <= this.b.storage.snapshot().metadata.index) return;
        saved = true;
        const snap = this.b.storage.createSnapshot(index, confState, data);
        await this.b.snapshotter.save(snap);
        await this.b.wal.saveSnapshot({ index, term: snap.metadata.term });
        this.snapshotIndex = index;
        const compactIndex = this.compactIndexFor(index);
        // a follower being sent a snapshot needs the entries after it (etcd skips the compaction too)
        if (this.inflightSnapshots > 0) {
          this.logger.info("skip compaction since there is an inflight snapshot", {});
        } else if (compactIndex > this.b.storage.firstIndex()) this.b.storage.compact(compactIndex);
        await this.b.wal.releaseLockTo(index);
      });
      if (!saved) return;
      this.logger.info("saved snapshot", { "snapshot-index": index });
      await this.b.purge();
    } catch (err) {
      this.fatal(err);
    } finally {
      this.snapshotting = false;
    }
  }

  /**
   * Where the raft log is compacted after a snapshot at `index`. etcd keeps the 5000 entries behind it for a follower
   * a little behind; a leader here also keeps what a member further behind still needs (one down for a few seconds,
   * restarting), if that is at most --snapshot-count entries and RETAINED_BYTES: the member then catches up from
   * entries instead of the leader's whole backend (read, sent, written, replayed and indexed again). A member further
   * behind than that gets a snapshot, as in etcd.
   */
  private compactIndexFor(index: number): number {
    const keep = index > snapshotCatchUpEntries ? index - snapshotCatchUpEntries : 1;
    let at = keep;
    // progress is known to a leader only
    for (const [id, pr] of this.raft.rawNode.status().progress) {
      if (id !== this.id && pr.match < at && index - pr.match <= this.cfg.snapshotCount) at = pr.match;
    }
    if (at === keep || at < this.b.storage.firstIndex()) return at;
    const kept = this.b.storage.entries(at + 1, keep + 1, RETAINED_BYTES);
    if (kept.length < keep - at) return keep;
    this.logger.info("keeping raft log entries for a member behind the snapshot", {
      "snapshot-index": index,
      "compact-index": at,
      "entries-kept": index - at,
    });
    return at;
  }

  // ---- reads -------------------------------------------------------------------------

  /** Resolves once the applied state reflects every write acknowledged before the call. */
  private linearizableReadNotify(): Promise<void> {
    if (this.stopping) return Promise.reject(ErrGRPCStopped);
    return this.reads.wait(performance.now() + this.reqTimeoutMs);
  }

  private onLeaderChanged(lead: NodeId, isLeader: boolean): void {
    if (lead !== NONE) {
      this.wakeLeaderWaiters();
      this.reads.leaderElected();
    }
    if (!isLeader) this.lessor.demote();
    if (lead === NONE) this.logger.warn("lost leader", {});
    else if (isLeader) {
      this.logger.info("elected leader", { "local-member-id": this.id.toString(16), term: this.raft.term });
    }
  }

  // ---- status ------------------------------------------------------------------------

  get hasLeader(): boolean {
    return this.raft.lead !== NONE;
  }

  header(revision: number): ResponseHeader {
    return {
      $typeName: "etcdserverpb.ResponseHeader",
      clusterId: this.cluster.clusterId,
      memberId: this.id,
      revision: BigInt(revision),
      raftTerm: BigInt(this.raft.term),
    };
  }

  /**
   * A header for the many responses of one revision (a watch event fanned out to every watcher): made once per
   * revision, term and cluster ID and shared, so callers must not change it.
   */
  sharedHeader(revision: number): ResponseHeader {
    const c = this.sharedHeaderCache;
    if (c.revision === revision && c.term === this.raft.term && c.clusterId === this.cluster.clusterId) return c.header;
    const header = this.header(revision);
    this.sharedHeaderCache = { revision, term: this.raft.term, clusterId: this.cluster.clusterId, header };
    return header;
  }

  /** Fills in the applier's header (revision only) in place, with bigints made once per term. */
  private withHeader<T extends { header?: ResponseHeader }>(resp: T): T {
    const h = resp.header;
    if (h === undefined) {
      resp.header = this.header(this.b.store.rev);
      return resp;
    }
    const term = this.raft.term;
    if (term !== this.termBig[0]) this.termBig = [term, BigInt(term)];
    h.clusterId = this.cluster.clusterId;
    h.memberId = this.id;
    h.raftTerm = this.termBig[1];
    return resp;
  }

  get store() {
    return this.b.store;
  }

  get backend() {
    return this.b.backend;
  }

  status() {
    return {
      leader: this.raft.lead,
      raftIndex: this.raft.commitIndex,
      raftTerm: this.raft.term,
      raftAppliedIndex: this.appliedIndex,
      dbSize: this.b.backend.dbSize(),
      dbSizeInUse: this.b.backend.dbSizeInUse(),
      isLearner: this.learner,
    };
  }

  /** etcd's /health: no alarm raised but the excluded ones, a leader, and a linearizable read gets through in time. */
  async checkHealth(timeoutMs: number, excludedAlarms: ReadonlySet<string>): Promise<boolean> {
    const alarm = this.alarms.get(AlarmType.NONE).find((m) => !excludedAlarms.has(AlarmType[m.alarm]));
    if (alarm !== undefined) {
      this.logger.warn("/health error due to an alarm", { alarm: alarmString(alarm) });
      return false;
    }
    if (this.raft.lead === NONE || this.stopping) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
    try {
      return await Promise.race([this.linearizableReadNotify().then(() => true, () => false), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Rewrites the backend file with only live data (Maintenance.Defragment). */
  async defragment(): Promise<void> {
    this.logger.info("starting defragment", {});
    await this.b.backend.defrag();
    this.logger.info("finished defragment", { "current-db-size-bytes": this.b.backend.dbSize() });
  }

  // ---- lifecycle ---------------------------------------------------------------------

  private fatal(err: unknown): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = err;
    this.logger.error("etcd server stopped on a fatal error", { error: String(err) });
    void this.stop();
  }

  /**
   * etcd's MoveLeader: asks raft to hand leadership to `transferee` and waits, up to timeoutMs, until it has it. The
   * caller checks this member leads (Maintenance.MoveLeader answers ErrGRPCNotLeader otherwise).
   */
  async moveLeader(transferee: NodeId, timeoutMs = this.reqTimeoutMs): Promise<void> {
    const m = this.cluster.members.get(transferee);
    if (m === undefined || m.isLearner) throw ErrGRPCBadLeaderTransferee;
    const lead = this.raft.lead, t0 = performance.now();
    this.logger.info("leadership transfer starting", {
      "local-member-id": this.id.toString(16),
      "current-leader-member-id": lead.toString(16),
      "transferee-member-id": transferee.toString(16),
    });
    this.raft.rawNode.transferLeader(transferee);
    this.raft.kick();
    while (this.raft.lead !== transferee) {
      if (performance.now() - t0 > timeoutMs) throw ErrTimeoutLeaderTransfer;
      await new Promise((r) => setTimeout(r, this.cfg.heartbeatIntervalMs));
    }
    this.logger.info("leadership transfer finished", {
      "local-member-id": this.id.toString(16),
      "old-leader-member-id": lead.toString(16),
      "new-leader-member-id": transferee.toString(16),
      took: `${((performance.now() - t0) / 1000).toFixed(6)}s`,
    });
  }

  /**
   * A leader that stops hands leadership to the most caught-up voter first (etcd's TransferLeadership), so that the
   * cluster does not wait an election timeout for a new one.
   */
  private async transferLeadership(): Promise<void> {
    if (!this.raft.rawNode.isLeader()) return;
    let best: NodeId | undefined, bestMatch = -1;
    for (const [id, pr] of this.raft.rawNode.status().progress) {
      // a voter heard from lately (etcd: the longest connected); a dead one would only run the timeout out
      if (id === this.id || !this.confState.voters.includes(id) || !pr.recentActive) continue;
      if (pr.match > bestMatch) [best, bestMatch] = [id, pr.match];
    }
    if (best === undefined) return; // a single voter: nobody to hand over to
    try {
      // raft itself abandons a transfer after an election timeout: waiting much longer only delays the stop
      await this.moveLeader(best, 2 * this.cfg.electionTimeoutMs);
    } catch (err) {
      this.logger.warn("leadership transfer failed", { "local-member-id": this.id.toString(16), error: String(err) });
    }
  }

  /** Stops raft, finishes in-flight applies, flushes the backend and closes the WAL. */
  async stop(): Promise<void> {
    if (this.stopping || this.handingOver) return await this.stopResolvers.promise.catch(() => {});
    this.handingOver = true;
    // raft keeps running meanwhile: the transfer needs the peers' answers
    if (this.fatalError === undefined) await this.transferLeadership();
    this.stopping = true;
    // a restore held for a snapshot that will not be applied now finishes, so the applies waiting for it can
    this.restorePauses = Math.min(this.restorePauses, 1);
    this.resumeRestore();
    clearInterval(this.sweeper);
    clearInterval(this.corruptMonitor);
    this.leaderMonitor.stop();
    this.lessorLoop.stop();
    this.transport.stop();
    this.linkFaults?.stop();
    this.lessor.demote();
    await this.compactor?.stop();
    await this.raft.stop();
    await this.scheduler.idle();
    await this.snapshotDone;
    this.wait.failAll(ErrGRPCStopped);
    this.reads.failAll(ErrGRPCStopped);
    this.wakeLeaderWaiters();
    for (const w of this.appliedWaiters) w.resolve();
    this.appliedWaiters = [];
    this.watchable.close();
    await this.localRestore?.catch(() => {});
    await this.b.close();
    if (this.fatalError !== undefined) this.stopResolvers.reject(this.fatalError);
    else this.stopResolvers.resolve();
  }
}

/** Whether the log past the snapshot holds a configuration change. */
function logHasConfChange(storage: MemoryStorage): boolean {
  const first = storage.firstIndex(), last = storage.lastIndex();
  return last >= first && storage.entries(first, last + 1, Infinity).some(isConfChange);
}

function check(err: RpcError | null): void {
  if (err !== null) throw err;
}

function throwIf(err: RpcError | undefined): void {
  if (err !== undefined) throw err;
}
