// The cluster's members (etcd's membership.RaftCluster). IDs are etcd's, all 64 bits: a member's is the first 8
// bytes of sha1(sorted peer URLs + cluster token [+ time]), the cluster's of sha1(the sorted member IDs).
import { createHash } from "node:crypto";
import { compareIds, type NodeId } from "../raft/types.ts";

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
}

/** IDs in JSON: hex strings; plain numbers from snapshots written before IDs had 64 bits. */
function idFromJSON(v: string | number): NodeId {
  return typeof v === "number" ? BigInt(v) : BigInt(`0x${v}`);
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

export class RaftCluster {
  readonly members = new Map<NodeId, Member>();
  version = "";

  constructor(public clusterId: NodeId, public readonly localId: NodeId) {}

  add(m: Member): void {
    this.members.set(m.id, { ...m });
  }

  remove(id: NodeId): void {
    this.members.delete(id);
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

  toJSON(): ClusterJSON {
    return {
      clusterId: this.clusterId.toString(16),
      version: this.version,
      members: this.list().map((m) => ({ ...m, id: m.id.toString(16) })),
    };
  }

  /** Takes the members and version of a snapshot's membership in place of its own. */
  recover(j: ClusterJSON): void {
    const c = RaftCluster.fromJSON(this.localId, j);
    this.clusterId = c.clusterId;
    this.version = c.version;
    this.members.clear();
    for (const m of c.members.values()) this.members.set(m.id, m);
  }

  static fromJSON(
    localId: NodeId,
    j: ClusterJSON,
  ): RaftCluster {
    const c = new RaftCluster(idFromJSON(j.clusterId), localId);
    c.version = j.version;
    for (const m of j.members) c.add({ ...m, id: idFromJSON(m.id) });
    return c;
  }
}
