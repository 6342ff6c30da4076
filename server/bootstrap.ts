// How a member comes up from its data dir (etcd's NewServer bootstrap cases): with no
// WAL it starts a new cluster from --initial-cluster; with a WAL it restarts from the
// newest usable snapshot plus the WAL after it, and the backend (which records the
// consistent index of the last entry it holds) tells which entries need applying again.
import { mkdir } from "node:fs/promises";
import { MemoryStorage } from "../raft/storage.ts";
import type { Peer } from "../raft/rawnode.ts";
import {
  compareIds,
  type ConfChange,
  ConfChangeType,
  emptyConfState,
  emptyHardState,
  type Entry,
  EntryType,
  type HardState,
  type NodeId,
  NONE,
  type Snapshot,
} from "../raft/types.ts";
import { decodeConfChange, encodeConfChange } from "../raft/confchange_codec.ts";
import { ProtoReader, ProtoWriter } from "../wal/proto_wire.ts";
import { Snapshotter } from "../wal/snapshotter.ts";
import { WAL, type WalOptions, type WalSnapshot } from "../wal/wal.ts";
import { Backend } from "../mvcc/backend.ts";
import type { BoltImport } from "../mvcc/bolt_import.ts";
import { consistentIndexIn, KVStore } from "../mvcc/kvstore.ts";
import { Lessor } from "./lease/lessor.ts";
import { type EtcdConfig, minLeaseTTL } from "./config.ts";
import { backendPath, snapDir, walDir } from "./data_dir.ts";
import type { Logger } from "./logger.ts";
import {
  applyMembershipRecord,
  computeClusterId,
  type Member,
  memberJSON,
  parseInitialCluster,
  RaftCluster,
} from "./membership.ts";
import { MEMBERS_PREFIX, parseMembersJSON } from "./peer/members_http.ts";
import { decodeRequest, isMembershipRecord } from "./raft_request_codec.ts";
import { purge } from "../wal/purge.ts";
import { fsyncDir, pathExists } from "../wal/fs_util.ts";

/** Entries kept in the raft log behind a snapshot so slow followers can catch up without one (etcd's). */
export const snapshotCatchUpEntries = 5000;

export interface Bootstrapped {
  memberId: NodeId;
  cluster: RaftCluster;
  storage: MemoryStorage;
  wal: WAL;
  snapshotter: Snapshotter;
  /**
   * What raft's log starts after on a restart: the snapshot file restarted from, or, when the backend had applied
   * entries past it, a snapshot of the membership made in memory at the last of those (snapshotCatchUpEntries before
   * it, for followers a little behind), so that the entries the backend holds are neither made again nor applied: a
   * restart from an 85k-entry WAL was ready ~100 ms sooner. It is not written: the next restart replays from the file's.
   */
  snapshot?: Snapshot;
  /**
   * A restart's committed entries read from the WAL (up to index `through`), and which of them record membership (a
   * member's attributes, the cluster version): told while the replay had their bytes mapped, as the apply of those the
   * backend already holds asks for nothing else (asking it of their bytes faulted ~1000 released pages back in, ~50
   * ms of a restart that replays 85k entries). `applied`: the backend's consistent index read before the replay, which
   * the snapshot in memory (above) relies on: its replay must find at least as much (checked). `snapshotIndex`: the
   * snapshot file's, where --snapshot-count counts from as in etcd, be there a snapshot in memory after it or not.
   */
  replayed?: { through: number; membership: Set<number>; applied: number; snapshotIndex: number };
  /** Set for a brand-new member: the initial voters raft must bootstrap with. */
  peers?: Peer[];
  /**
   * Peer URLs of the other members known before the membership is applied (etcd's transport remotes): the initial
   * cluster of a new member. The membership itself comes from applying the configuration entries.
   */
  remotes: Map<NodeId, string[]>;
  /**
   * Opened unloaded (see Backend.openUnloaded): the server replays it while raft already runs (EtcdServer.restoreLocal),
   * and the store, lessor and alarms, empty until then, recover from it. Replaced, when a leader's snapshot is
   * installed, by installSnapshotDb's backend.
   */
  backend: Backend;
  store: KVStore;
  lessor: Lessor;
  /**
   * Puts the backend received with the snapshot at `index` in the backend's place (rename, directory fsync) and
   * opens it; the caller has closed the old one.
   */
  installSnapshotDb(index: number): Promise<Backend>;
  /** Removes WAL and snapshot files beyond --max-wals / --max-snapshots. */
  purge(): Promise<void>;
  close(): Promise<void>;
}

interface WalMetadata {
  memberId: NodeId;
  clusterId: NodeId;
}

/** The WAL's metadata record as etcd writes it: etcdserverpb.Metadata {NodeID = 1, ClusterID = 2}, both always. */
function encodeWalMetadata(m: WalMetadata): Uint8Array {
  const w = new ProtoWriter(24);
  w.uvarint64Field(1, m.memberId);
  w.uvarint64Field(2, m.clusterId);
  return w.view().slice();
}

function decodeWalMetadata(b: Uint8Array): WalMetadata {
  // WALs written before IDs had 64 bits hold JSON
  if (b[0] === 0x7b) {
    const j = JSON.parse(new TextDecoder().decode(b));
    return { memberId: BigInt(j.memberId), clusterId: BigInt(j.clusterId) };
  }
  const r = new ProtoReader(b);
  const m: WalMetadata = { memberId: NONE, clusterId: NONE };
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === 0x08) m.memberId = r.uvarint64();
    else if (tag === 0x10) m.clusterId = r.uvarint64();
    else r.skip(tag & 7);
  }
  if (m.memberId === NONE) throw new Error("wal: metadata without a member ID");
  return m;
}

/** Disk latencies, in seconds, for etcd_disk_wal_fsync_duration_seconds and etcd_disk_backend_commit_duration_seconds. */
export interface DiskObservers {
  readonly onWalFsync: (seconds: number) => void;
  readonly onBackendCommit: (seconds: number) => void;
  /** The backend could not commit: the member must stop. */
  readonly onBackendFailure: (e: Error) => void;
}

export async function bootstrapMember(cfg: EtcdConfig, logger: Logger, disk: DiskObservers): Promise<Bootstrapped> {
  const wdir = walDir(cfg.dataDir, cfg.walDir);
  const sdir = snapDir(cfg.dataDir);
  try {
    await mkdir(sdir, { recursive: true, mode: 0o700 });
    await Deno.writeFile(`${sdir}/.touch`, new Uint8Array(0));
    await Deno.remove(`${sdir}/.touch`);
  } catch (err) {
    throw new Error(`cannot access data directory: ${(err as Error).message}`);
  }
  const walLog = (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) =>
    logger[level](msg, fields ?? {});
  const snapshotter = new Snapshotter(sdir, walLog);
  const haveWal = await WAL.exists(wdir);
  const bePath = backendPath(cfg.dataDir);

  // The WAL's segment locks keep a second process out, so take them before the backend.
  const b = haveWal
    ? await bootstrapFromWal(cfg, wdir, bePath, snapshotter, logger, { logger: walLog, onFsync: disk.onWalFsync })
    : await bootstrapNew(cfg, wdir, logger, { logger: walLog, onFsync: disk.onWalFsync });
  const beOpts = {
    onCommit: disk.onBackendCommit,
    onFailure: disk.onBackendFailure,
    onBoltImport: (i: BoltImport) =>
      logger.info("rewrote etcd's bbolt backend as detcd's backend", { path: bePath, ...i }),
  };
  const installSnapshotDb = async (index: number): Promise<Backend> => {
    const received = snapshotter.dbFilePath(index);
    if (!(await pathExists(received))) {
      throw new Error(`failed to find database snapshot file (snap: snapshot file doesn't exist): ${received}`);
    }
    await Deno.rename(received, bePath);
    await fsyncDir(sdir);
    return Backend.open(bePath, beOpts);
  };
  let backend: Backend | undefined;
  try {
    backend = await Backend.openUnloaded(bePath, beOpts);
    // the backend of the snapshot the member restarts from stays: it is installed if the member stopped between
    // saving a leader's snapshot and installing it (restoreLocal); the others are of snapshots raft never saved
    const snapIndex = b.snapshot?.metadata.index ?? 0;
    for (const name of await snapshotter.releaseDbsUpTo(Infinity, snapIndex)) {
      logger.info("removed an unused database snapshot", { path: `${sdir}/${name}` });
    }
  } catch (err) {
    await backend?.close();
    await b.wal.close();
    throw err;
  }
  // empty until the backend is loaded, as after a leader's snapshot: the leases first, the store attaches keys to them
  const lessor = new Lessor(backend, {
    minTTL: minLeaseTTL(cfg),
    checkpointPersist: cfg.leaseCheckpointPersist,
    checkpointIntervalMs: cfg.leaseCheckpointIntervalMs,
  });
  const store = KVStore.open(backend, { lessor });
  const out: Bootstrapped = {
    ...b,
    snapshotter,
    backend,
    store,
    lessor,
    installSnapshotDb,
    purge: async () => {
      for (const name of await purge(wdir, ".wal", cfg.maxWals)) logger.info("purged", { path: `${wdir}/${name}` });
      for (const name of await snapshotter.purge(cfg.maxSnapshots)) {
        logger.info("purged", { path: `${sdir}/${name}` });
      }
    },
    close: async () => {
      await b.wal.close();
      await out.store.close();
      await out.backend.close();
    },
  };
  return out;
}

/** --initial-cluster's members, and this one among them, its peer URLs as advertised (etcd's verifyLocalMember). */
function initialMembers(cfg: EtcdConfig): { members: Member[]; local: Member } {
  const members = parseInitialCluster(cfg.initialCluster, cfg.initialClusterToken);
  const local = members.find((m) => m.name === cfg.name);
  if (local === undefined) {
    throw new Error(`couldn't find local name "${cfg.name}" in the initial cluster configuration`);
  }
  const advertised = cfg.initialAdvertisePeerUrls.map((u) => u.href.replace(/\/$/, "")).sort();
  const listed = normalizedUrls(local.peerUrls);
  if (advertised.join(",") !== listed.join(",")) {
    throw new Error(
      `--initial-cluster has ${cfg.name}=${listed.join(",")} but missing from --initial-advertise-peer-urls=${
        advertised.join(",")
      }`,
    );
  }
  return { members, local };
}

function normalizedUrls(urls: string[]): string[] {
  return urls.map((u) => new URL(u).href.replace(/\/$/, "")).sort();
}

async function bootstrapNew(cfg: EtcdConfig, wdir: string, logger: Logger, walOpts: WalOptions) {
  if (cfg.initialClusterState === "existing") return await bootstrapJoin(cfg, wdir, logger, walOpts);
  const { members, local } = initialMembers(cfg);
  // the members join the membership as the bootstrap entries below are applied, as every later member does
  const cluster = new RaftCluster(computeClusterId(members.map((m) => m.id)), local.id);
  const remotes = new Map(members.filter((m) => m.id !== local.id).map((m) => [m.id, m.peerUrls]));
  const meta: WalMetadata = { memberId: local.id, clusterId: cluster.clusterId };
  const wal = await WAL.create(wdir, encodeWalMetadata(meta), walOpts);
  logger.info("starting local member", {
    "local-member-id": local.id.toString(16),
    "cluster-id": cluster.clusterId.toString(16),
  });
  // in ID order, as etcd's MemberIDs(): every member bootstraps the same configuration entries
  const peers: Peer[] = [...members].sort((a, b) => compareIds(a.id, b.id)).map((m) => ({
    id: m.id,
    context: new TextEncoder().encode(memberJSON(m)),
  }));
  return { memberId: local.id, cluster, storage: new MemoryStorage(), wal, peers, remotes, snapshot: undefined };
}

/**
 * --initial-cluster-state existing (etcd's join case): the members come from the running cluster (`GET /members` on
 * the other members' peer URLs), matched to --initial-cluster by peer URLs to learn this member's ID, which `member
 * add` chose. Raft starts with no configuration: the leader's log (or snapshot) brings the membership, this member's
 * own addition included.
 */
async function bootstrapJoin(cfg: EtcdConfig, wdir: string, logger: Logger, walOpts: WalOptions) {
  const { members, local } = initialMembers(cfg);
  const urls = members.filter((m) => m !== local).flatMap((m) => m.peerUrls).sort();
  let existing: { clusterId: NodeId; members: Member[] } | undefined;
  for (const u of urls) {
    const address = `${u.replace(/\/$/, "")}${MEMBERS_PREFIX}`;
    try {
      const res = await fetch(address, { signal: AbortSignal.timeout(10_000) });
      const found = parseMembersJSON(await res.text());
      const cid = res.headers.get("x-etcd-cluster-id") ?? "";
      if (!/^[0-9a-f]{1,16}$/.test(cid)) throw new Error(`bad X-Etcd-Cluster-ID ${JSON.stringify(cid)}`);
      if (found.length === 0) throw new Error("failed to get raft cluster member(s) from the given URLs");
      existing = { clusterId: BigInt(`0x${cid}`), members: found };
      break;
    } catch (err) {
      logger.warn("failed to get cluster response", { address, error: String(err) });
    }
  }
  if (existing === undefined) {
    throw new Error(
      "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs",
    );
  }
  // etcd's ValidateClusterAndAssignIDs: the same members, each known by its peer URLs
  const cid = existing.clusterId.toString(16);
  if (existing.members.length !== members.length) {
    throw new Error(`error validating peerURLs ${cid}: member count is unequal`);
  }
  let localId: NodeId | undefined;
  for (const e of existing.members) {
    const match = members.find((m) => normalizedUrls(m.peerUrls).join(",") === normalizedUrls(e.peerUrls).join(","));
    if (match === undefined) {
      throw new Error(`error validating peerURLs ${cid}: unmatched member while checking PeerURLs (${e.peerUrls})`);
    }
    if (match === local) localId = e.id;
  }
  const remotes = new Map(existing.members.filter((m) => m.id !== localId).map((m) => [m.id, m.peerUrls]));
  const cluster = new RaftCluster(existing.clusterId, localId!);
  const wal = await WAL.create(wdir, encodeWalMetadata({ memberId: localId!, clusterId: existing.clusterId }), walOpts);
  logger.info("starting local member", {
    "local-member-id": localId!.toString(16),
    "cluster-id": cid,
  });
  return {
    memberId: localId!,
    cluster,
    storage: new MemoryStorage(),
    wal,
    peers: undefined,
    remotes,
    snapshot: undefined,
  };
}

async function bootstrapFromWal(
  cfg: EtcdConfig,
  wdir: string,
  bePath: string,
  snapshotter: Snapshotter,
  logger: Logger,
  walOpts: WalOptions,
) {
  const scan = await WAL.scan(wdir);
  let snapshot: Snapshot | undefined;
  try {
    snapshot = await snapshotter.loadNewestAvailable(scan.snapshots);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.includes("no available snapshot")) throw err;
  }
  const at: WalSnapshot = snapshot === undefined
    ? { index: 0, term: 0 }
    : { index: snapshot.metadata.index, term: snapshot.metadata.term };
  const wal = await WAL.open(wdir, at, walOpts, scan);
  // which replayed entries record membership (their requests), found while their bytes are mapped (see
  // Bootstrapped.replayed); where the first configuration change is, which raft must apply itself
  const records = new Map<number, Uint8Array>();
  let confChange = Infinity;
  let read, applied = 0;
  try {
    // force-new-cluster rewrites the membership from every committed entry; a log without a snapshot before it starts
    // with the configuration changes that made the cluster, which raft applies itself: nothing can be left out
    if (!cfg.forceNewCluster && snapshot !== undefined) applied = await consistentIndexIn(bePath);
    read = await wal.readAll(
      (index, type, buf, start, end) => {
        if (type !== EntryType.Normal) confChange = Math.min(confChange, index);
        else if (end > start && isMembershipRecord(buf, start, end)) records.set(index, buf.slice(start, end));
      },
      (hs, last) => Math.max(at.index, Math.min(applied, hs.commit, last, confChange - 1) - snapshotCatchUpEntries),
    );
  } catch (err) {
    await wal.close();
    throw err;
  }
  const meta = decodeWalMetadata(read.metadata);
  let entries = read.entries;
  const hardState = read.hardState;
  if (cfg.forceNewCluster) {
    entries = await forceNewCluster(meta, snapshot, hardState, entries, wal, logger);
  }
  const cluster = snapshot !== undefined && snapshot.data.length > 0
    ? RaftCluster.fromJSON(meta.memberId, RaftCluster.parseSnapshotData(snapshot.data, meta.clusterId))
    : new RaftCluster(meta.clusterId, meta.memberId);
  if (read.prev.index > at.index) {
    // the log starts after the entries the backend holds: what they did to the membership is done here
    for (const [index, data] of records) {
      if (index <= read.prev.index) applyMembershipRecord(cluster, decodeRequest(data), logger);
    }
    snapshot = {
      metadata: { ...read.prev, confState: snapshot?.metadata.confState ?? emptyConfState() },
      data: cluster.snapshotData(),
    };
  }
  const storage = new MemoryStorage();
  if (snapshot !== undefined) storage.applySnapshot(snapshot);
  storage.setHardState(hardState);
  storage.append(entries);
  logger.info("restarting local member", {
    "local-member-id": meta.memberId.toString(16),
    "cluster-id": meta.clusterId.toString(16),
    "commit-index": hardState.commit,
    "snapshot-index": at.index,
    "raft-log-first-index": read.prev.index + 1,
  });
  const replayed = {
    through: Math.min(hardState.commit, read.entries.at(-1)?.index ?? read.prev.index),
    membership: new Set(records.keys()),
    applied: read.prev.index > at.index ? applied : 0,
    snapshotIndex: at.index,
  };
  return { memberId: meta.memberId, cluster, storage, wal, snapshot, peers: undefined, remotes: new Map(), replayed };
}

/**
 * --force-new-cluster (etcd's restartAsStandaloneNode): the entries past the commit index are dropped, and committed
 * configuration changes are appended that remove every other member (adding this one first if it is missing), so
 * that this member restarts as a one-member cluster holding all the data. Returns the entries to replay.
 */
async function forceNewCluster(
  meta: WalMetadata,
  snapshot: Snapshot | undefined,
  hardState: HardState,
  read: Entry[],
  wal: WAL,
  logger: Logger,
): Promise<Entry[]> {
  let entries = read;
  const cut = entries.findIndex((e) => e.index > hardState.commit);
  if (cut >= 0) {
    logger.info("discarding uncommitted WAL entries", {
      "entry-index": entries[cut].index,
      "commit-index-from-wal": hardState.commit,
      "number-of-discarded-entries": entries.length - cut,
    });
    entries = entries.slice(0, cut);
  }
  // the members raft knows of: the snapshot's voters, then every configuration change after it
  const ids = new Set<NodeId>(snapshot?.metadata.confState.voters ?? []);
  for (const e of entries) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.RemoveNode) ids.delete(cc.nodeId);
    else if (cc.type !== ConfChangeType.UpdateNode) ids.add(cc.nodeId);
  }
  const changes: ConfChange[] = [];
  // this member first: raft must never be left without a voter
  if (!ids.has(meta.memberId)) {
    const context = memberJSON({ id: meta.memberId, peerUrls: ["http://localhost:2380"] });
    changes.push({
      id: 0n,
      type: ConfChangeType.AddNode,
      nodeId: meta.memberId,
      context: new TextEncoder().encode(context),
    });
  }
  for (const id of [...ids].sort(compareIds)) {
    if (id !== meta.memberId) changes.push({ id: 0n, type: ConfChangeType.RemoveNode, nodeId: id });
  }
  const appended: Entry[] = changes.map((cc, i) => ({
    term: hardState.term,
    index: hardState.commit + 1 + i,
    type: EntryType.ConfChange,
    data: encodeConfChange(cc),
  }));
  await wal.save(emptyHardState(), appended);
  entries = [...entries, ...appended];
  if (entries.length > 0) hardState.commit = entries[entries.length - 1].index;
  logger.info("forcing restart member", {
    "cluster-id": meta.clusterId.toString(16),
    "local-member-id": meta.memberId.toString(16),
    "commit-index": hardState.commit,
  });
  return entries;
}
