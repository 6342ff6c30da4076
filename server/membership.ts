// The cluster's members (etcd's membership.RaftCluster). IDs are etcd's, all 64 bits: a member's is the first 8
// bytes of sha1(sorted peer URLs + cluster token [+ time]), the cluster's of sha1(the sorted member IDs).
import { createHash } from "node:crypto";
import { compareIds, ConfChangeType, type NodeId } from "../raft/types.ts";
import {
  ErrGRPCMemberExist,
  ErrGRPCMemberNotFound,
  ErrGRPCMemberNotLearner,
  ErrGRPCPeerURLExist,
  ErrGRPCTooManyLearners,
  type RpcError,
} from "./apply_errors.ts";
import type { InternalRaftRequest } from "../rpc/gen/etcdserverpb/raft_internal_pb.ts";
import type { Logger } from "./logger.ts";

/**
 * Applies an entry's request if it records membership (a member's attributes, the cluster version; see
 * isMembershipRecord): true when it did. The cluster version's change is logged as etcd logs it.
 */
export function applyMembershipRecord(cluster: RaftCluster, req: InternalRaftRequest, logger: Logger): boolean {
  if (req.clusterMemberAttrSet !== undefined) {
    const a = req.clusterMemberAttrSet;
    cluster.setAttributes(a.memberID, a.memberAttributes?.name ?? "", a.memberAttributes?.clientUrls ?? []);
    return true;
  }
  if (req.clusterVersionSet !== undefined) {
    if (cluster.version !== req.clusterVersionSet.ver) {
      cluster.version = req.clusterVersionSet.ver;
      logger.info("set initial cluster version", { "cluster-version": cluster.version });
      logger.info("enabled capabilities for version", { "cluster-version": cluster.version });
    }
    return true;
  }
  return false;
}

export interface Member {
  id: NodeId;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

function idFromSha1(data: Uint8Array | string): NodeId {
  return createHash("sha1").update(data).digest().readBigUInt64BE(0);
}

/** etcd's NewMember: `nowSec` (Unix seconds) makes a member added later unique. */
export function computeMemberId(peerUrls: string[], clusterToken: string, nowSec?: number): NodeId {
  const sorted = [...peerUrls].sort();
  return idFromSha1(sorted.join("") + clusterToken + (nowSec === undefined ? "" : String(nowSec)));
}

export function computeClusterId(memberIds: NodeId[]): NodeId {
  const sorted = [...memberIds].sort(compareIds);
  const buf = new Uint8Array(8 * sorted.length);
  const view = new DataView(buf.buffer);
  sorted.forEach((id, i) => view.setBigUint64(8 * i, id));
  return idFromSha1(buf);
}

/** A member as the membership snapshot stores it: IDs as hex strings (JSON has no 64-bit integers). */
interface MemberJSON extends Omit<Member, "id"> {
  id: string | number;
}

/** The membership as a raft snapshot's data holds it. */
export interface ClusterJSON {
  clusterId: string | number;
  version: string;
  members: MemberJSON[];
  removed?: string[];
}

/** IDs in JSON: hex strings; plain numbers from snapshots written before IDs had 64 bits. */
function idFromJSON(v: string | number): NodeId {
  return typeof v === "number" ? BigInt(v) : BigInt(`0x${v}`);
}

/** etcd's membership.Attributes as JSON (omitempty fields), in its v2 store and in the v2 PUT that publishes them. */
export function attributesJSON(name: string, clientUrls: string[]): string {
  const a: { name?: string; clientURLs?: string[] } = {};
  if (name !== "") a.name = name;
  if (clientUrls.length > 0) a.clientURLs = clientUrls;
  return JSON.stringify(a);
}

/** etcd's v2 store as its snapshots save it (store.Save): a tree of nodes, values as strings. */
interface V2Node {
  Path?: string;
  CreatedIndex?: number;
  ModifiedIndex?: number;
  ExpireTime?: string;
  Value?: string;
  /** A directory's (possibly empty); null for a value. */
  Children?: Record<string, V2Node> | null;
}

/** A node as etcd's store.Save writes one: a value (`children` undefined) or a directory. */
function v2Node(path: string, value?: string, children?: Record<string, V2Node>): V2Node {
  return {
    Path: path,
    CreatedIndex: 0,
    ModifiedIndex: 0,
    ExpireTime: "0001-01-01T00:00:00Z",
    Value: value ?? "",
    Children: children ?? null,
  };
}
interface V2Store {
  Root: V2Node;
}

/**
 * The membership etcd keeps in its v2 store (etcdserver/api/membership): /0/members/<id>/raftAttributes (peerURLs,
 * isLearner) and /attributes (name, clientURLs), /0/removed_members/<id>, /0/version.
 */
function clusterOfV2Store(store: V2Store, clusterId: NodeId): ClusterJSON {
  const dir = store.Root.Children?.["0"]?.Children ?? {};
  const json = (n: V2Node | undefined) => JSON.parse(n?.Value ?? "{}") as Record<string, unknown>;
  return {
    clusterId: clusterId.toString(16),
    version: dir.version?.Value ?? "",
    members: Object.entries(dir.members?.Children ?? {}).map(([id, n]) => {
      const raft = json(n.Children?.raftAttributes), attrs = json(n.Children?.attributes);
      return {
        id,
        name: (attrs.name ?? "") as string,
        peerUrls: (raft.peerURLs ?? []) as string[],
        clientUrls: (attrs.clientURLs ?? []) as string[],
        isLearner: raft.isLearner === true,
      };
    }),
    removed: Object.keys(dir.removed_members?.Children ?? {}),
  };
}

/** Parses --initial-cluster ("a=http://h:2380,b=http://h2:2380") into members. */
export function parseInitialCluster(initialCluster: string, clusterToken: string): Member[] {
  const byName = new Map<string, string[]>();
  for (const part of initialCluster.split(",")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) throw new Error(`invalid --initial-cluster entry ${JSON.stringify(trimmed)}: want name=url`);
    const name = trimmed.slice(0, eq);
    const urls = byName.get(name) ?? [];
    urls.push(trimmed.slice(eq + 1));
    byName.set(name, urls);
  }
  const members: Member[] = [];
  for (const [name, peerUrls] of byName) {
    members.push({ id: computeMemberId(peerUrls, clusterToken), name, peerUrls, clientUrls: [], isLearner: false });
  }
  const ids = new Set(members.map((m) => m.id));
  if (ids.size !== members.length) throw new Error("--initial-cluster has duplicate peer URLs");
  return members;
}

/** A configuration change's context as etcd writes it (membership.ConfigChangeContext: a Member, isPromote). */
export interface MemberContext {
  id: NodeId;
  peerUrls: string[];
  isLearner: boolean;
  name: string;
  clientUrls: string[];
  isPromote: boolean;
}

/**
 * etcd's JSON of a Member (Go's encoding of membership.Member: the ID a decimal number, empty attributes left out),
 * with `isPromote` when it is a promotion's ConfigChangeContext. Used for conf-change contexts and the peer /members.
 */
export function memberJSON(
  m: { id: NodeId; peerUrls: string[] | null; isLearner?: boolean; name?: string; clientUrls?: string[] },
  isPromote?: boolean,
): string {
  let out = `{"id":${m.id},"peerURLs":${JSON.stringify(m.peerUrls)}`;
  if (m.isLearner) out += `,"isLearner":true`;
  if (m.name) out += `,"name":${JSON.stringify(m.name)}`;
  if (m.clientUrls !== undefined && m.clientUrls.length > 0) out += `,"clientURLs":${JSON.stringify(m.clientUrls)}`;
  if (isPromote !== undefined) out += `,"isPromote":${isPromote}`;
  return out + "}";
}

/** JSON whose "id" fields are 64-bit decimal numbers: read from their source text, JSON numbers would round them. */
export function parseWithIds(text: string): unknown {
  return JSON.parse(
    text,
    (k, v, ctx?: { source?: string }) => k === "id" && typeof v === "number" ? BigInt(ctx!.source!) : v,
  );
}

/** Reads a conf-change context: etcd's Member JSON, or detcd's first bootstrap form ({name, peerUrls}). */
export function parseMemberContext(data: Uint8Array, nodeId: NodeId): MemberContext {
  const j = parseWithIds(new TextDecoder().decode(data)) as Record<string, unknown>;
  return {
    id: typeof j.id === "bigint" ? j.id : nodeId,
    peerUrls: (j.peerURLs ?? j.peerUrls ?? []) as string[],
    isLearner: j.isLearner === true,
    name: (j.name ?? "") as string,
    clientUrls: (j.clientURLs ?? []) as string[],
    isPromote: j.isPromote === true,
  };
}

export class RaftCluster {
  readonly members = new Map<NodeId, Member>();
  /** Members removed: their IDs can never come back (etcd's removed members). */
  readonly removed = new Set<NodeId>();
  version = "";

  constructor(public clusterId: NodeId, public readonly localId: NodeId) {}

  add(m: Member): void {
    this.members.set(m.id, { ...m });
  }

  remove(id: NodeId): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  promote(id: NodeId): void {
    const m = this.members.get(id);
    if (m !== undefined) m.isLearner = false;
  }

  updatePeerUrls(id: NodeId, peerUrls: string[]): void {
    const m = this.members.get(id);
    if (m !== undefined) m.peerUrls = peerUrls;
  }

  /**
   * etcd's ValidateConfigurationChange, against the applied membership: the error that makes every member apply
   * the change as a no-op, or undefined when it is valid.
   */
  validateConfChange(type: ConfChangeType, id: NodeId, ctx: MemberContext | undefined): RpcError | undefined {
    if (this.removed.has(id)) return ErrGRPCMemberNotFound;
    const urlsOfOthers = () => {
      const urls = new Set<string>();
      for (const m of this.members.values()) if (m.id !== id) { for (const u of m.peerUrls) urls.add(u); }
      return urls;
    };
    switch (type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode: {
        if (ctx?.isPromote) {
          const m = this.members.get(id);
          if (m === undefined) return ErrGRPCMemberNotFound;
          if (!m.isLearner) return ErrGRPCMemberNotLearner;
          return undefined;
        }
        if (this.members.has(id)) return ErrGRPCMemberExist;
        const urls = urlsOfOthers();
        if (ctx?.peerUrls.some((u) => urls.has(u))) return ErrGRPCPeerURLExist;
        // etcd's maxLearners
        if (ctx?.isLearner && [...this.members.values()].some((m) => m.isLearner)) return ErrGRPCTooManyLearners;
        return undefined;
      }
      case ConfChangeType.RemoveNode:
        return this.members.has(id) ? undefined : ErrGRPCMemberNotFound;
      case ConfChangeType.UpdateNode: {
        if (!this.members.has(id)) return ErrGRPCMemberNotFound;
        const urls = urlsOfOthers();
        return ctx?.peerUrls.some((u) => urls.has(u)) ? ErrGRPCPeerURLExist : undefined;
      }
    }
    return undefined;
  }

  /**
   * --strict-reconfig-check's quorum rules (etcd's IsReadyTo*): after the change, the members that have started
   * (published their name) must still make a quorum of the voters. `change`: a voter added, `id` removed or promoted.
   */
  isReadyTo(change: "add" | "remove" | "promote", id: NodeId = 0n): boolean {
    let nmembers = change === "remove" ? 0 : 1, nstarted = change === "promote" ? 1 : 0;
    for (const m of this.members.values()) {
      if (m.isLearner || (change === "remove" && m.id === id)) continue;
      if (m.name !== "") nstarted++;
      nmembers++;
    }
    // adding a second member to a one-member cluster (restoring a cluster's data) is always allowed
    if (change === "add" && nstarted === 1 && nmembers === 2) return true;
    return nstarted >= Math.floor(nmembers / 2) + 1;
  }

  setAttributes(id: NodeId, name: string, clientUrls: string[]): void {
    const m = this.members.get(id);
    if (m === undefined) return;
    m.name = name;
    m.clientUrls = clientUrls;
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  voterIds(): NodeId[] {
    return this.list().filter((m) => !m.isLearner).map((m) => m.id);
  }

  /**
   * What a raft snapshot holds of the membership (its data), as etcd 3.4 writes it: its v2 store's JSON (see
   * clusterOfV2Store), so that an etcd member takes a detcd leader's snapshot and etcd reads detcd's snapshot files.
   */
  snapshotData(): Uint8Array {
    const members: Record<string, V2Node> = {};
    for (const m of this.list()) {
      const dir = `/0/members/${m.id.toString(16)}`;
      const raft: { peerURLs: string[]; isLearner?: boolean } = { peerURLs: m.peerUrls };
      if (m.isLearner) raft.isLearner = true;
      const children: Record<string, V2Node> = {
        raftAttributes: v2Node(`${dir}/raftAttributes`, JSON.stringify(raft)),
      };
      // a member that has not published has no attributes
      if (m.name !== "" || m.clientUrls.length > 0) {
        children.attributes = v2Node(`${dir}/attributes`, attributesJSON(m.name, m.clientUrls));
      }
      members[m.id.toString(16)] = v2Node(dir, undefined, children);
    }
    const removed: Record<string, V2Node> = {};
    for (const id of [...this.removed].sort(compareIds)) {
      removed[id.toString(16)] = v2Node(`/0/removed_members/${id.toString(16)}`, "");
    }
    const zero: Record<string, V2Node> = {
      members: v2Node("/0/members", undefined, members),
      removed_members: v2Node("/0/removed_members", undefined, removed),
    };
    if (this.version !== "") zero.version = v2Node("/0/version", this.version);
    const root = v2Node("/", undefined, { "0": v2Node("/0", undefined, zero), "1": v2Node("/1", undefined, {}) });
    return new TextEncoder().encode(JSON.stringify({ Root: root }));
  }

  /**
   * The cluster a raft snapshot's data holds: etcd's v2 store (see snapshotData), which has no cluster ID (the WAL's
   * metadata has it: `clusterId`), or the JSON detcd wrote before.
   */
  static parseSnapshotData(data: Uint8Array, clusterId: NodeId): ClusterJSON {
    const j = JSON.parse(new TextDecoder().decode(data));
    return "Root" in j ? clusterOfV2Store(j as V2Store, clusterId) : j;
  }

  /** Takes the members and version of a snapshot's membership in place of its own. */
  recover(j: ClusterJSON): void {
    const c = RaftCluster.fromJSON(this.localId, j);
    this.clusterId = c.clusterId;
    this.version = c.version;
    this.members.clear();
    for (const m of c.members.values()) this.members.set(m.id, m);
    this.removed.clear();
    for (const id of c.removed) this.removed.add(id);
  }

  static fromJSON(
    localId: NodeId,
    j: ClusterJSON,
  ): RaftCluster {
    const c = new RaftCluster(idFromJSON(j.clusterId), localId);
    c.version = j.version;
    for (const m of j.members) c.add({ ...m, id: idFromJSON(m.id) });
    for (const id of j.removed ?? []) c.removed.add(idFromJSON(id));
    return c;
  }
}
