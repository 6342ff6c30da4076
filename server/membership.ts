// The cluster's members (etcd's membership.RaftCluster). Ids are derived like etcd's —
// sha1 of the sorted peer URLs and the cluster token — but cut to 52 bits so they are
// exact JavaScript numbers everywhere (raft, WAL, response headers).
import { createHash } from "node:crypto";

export interface Member {
  id: number;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

const idMask = 2 ** 52;

function idFromSha1(data: Uint8Array | string): number {
  const d = createHash("sha1").update(data).digest();
  // 52 bits from the first 7 bytes of the digest (the first 8 are what etcd uses)
  const hi = d.readUInt32BE(0) % 2 ** 20;
  const lo = d.readUInt32BE(4);
  const id = hi * 2 ** 32 + lo;
  return id === 0 ? 1 : id % idMask;
}

export function computeMemberId(peerUrls: string[], clusterToken: string, nowMs?: number): number {
  const sorted = [...peerUrls].sort();
  return idFromSha1(sorted.join("") + clusterToken + (nowMs === undefined ? "" : String(nowMs)));
}

export function computeClusterId(memberIds: number[]): number {
  const sorted = [...memberIds].sort((a, b) => a - b);
  const buf = new Uint8Array(8 * sorted.length);
  const view = new DataView(buf.buffer);
  sorted.forEach((id, i) => view.setBigUint64(8 * i, BigInt(id)));
  return idFromSha1(buf);
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
  readonly members = new Map<number, Member>();
  version = "";

  constructor(public clusterId: number, public readonly localId: number) {}

  add(m: Member): void {
    this.members.set(m.id, { ...m });
  }

  remove(id: number): void {
    this.members.delete(id);
  }

  setAttributes(id: number, name: string, clientUrls: string[]): void {
    const m = this.members.get(id);
    if (m === undefined) return;
    m.name = name;
    m.clientUrls = clientUrls;
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id);
  }

  voterIds(): number[] {
    return this.list().filter((m) => !m.isLearner).map((m) => m.id);
  }

  toJSON(): { clusterId: number; version: string; members: Member[] } {
    return { clusterId: this.clusterId, version: this.version, members: this.list() };
  }

  static fromJSON(localId: number, j: { clusterId: number; version: string; members: Member[] }): RaftCluster {
    const c = new RaftCluster(j.clusterId, localId);
    c.version = j.version;
    for (const m of j.members) c.add(m);
    return c;
  }
}
