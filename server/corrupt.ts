// Corruption checks (etcd's corrupt.go): members compare the hash of their key-value history at a revision.
// `GET /members/hashkv` on the peer port answers a member's HashKV (a JSON HashKVRequest in the body of a GET, as
// etcd 3.4 sends it); --experimental-initial-corrupt-check compares this member's with its peers' before it serves
// clients, and --experimental-corrupt-check-time makes the leader compare everyone's periodically, raising the CORRUPT
// alarm through raft on a mismatch.
import { Buffer } from "node:buffer";
import { request } from "node:http";
import type { NodeId } from "../raft/types.ts";
import { ErrCompacted, ErrFutureRev } from "../mvcc/errors.ts";
import type { Logger } from "./logger.ts";
import type { Member } from "./membership.ts";
import { type PeerRequest, type PeerResponse, plainError } from "./peer/http.ts";
import { readPeerBody } from "./peer/transport.ts";

export const PEER_HASHKV_PATH = "/members/hashkv";

interface HashKV {
  hash: number;
  currentRev: number;
  compactRev: number;
}

/** `GET /members/hashkv` (etcd's hashKVHandler): {"revision": N} in, HashKVResponse JSON out. */
export function hashKVHandler(opts: {
  clusterId: () => NodeId;
  hashByRev: (rev: number) => HashKV;
  logger: Logger;
}): (req: PeerRequest, res: PeerResponse) => void {
  return (req, res) => {
    if (req.method !== "GET") return void plainError(res.setHeader("allow", "GET"), 405, "Method Not Allowed");
    readPeerBody(req, (body) => {
      let rev: number;
      try {
        const j = JSON.parse(body.length === 0 ? "{}" : body.toString());
        rev = Number(j.revision ?? 0);
        if (!Number.isSafeInteger(rev)) throw new Error("bad revision");
      } catch (err) {
        opts.logger.warn("failed to unmarshal request", { error: String(err) });
        return plainError(res, 400, "error unmarshalling request");
      }
      let h: HashKV;
      try {
        h = opts.hashByRev(rev);
      } catch (err) {
        opts.logger.warn("failed to get hashKV", { "requested-revision": rev, error: String(err) });
        return plainError(res, 400, err instanceof Error ? err.message : String(err));
      }
      res.writeHead(200, {
        "x-etcd-cluster-id": opts.clusterId().toString(16),
        "content-type": "application/json",
      }).end(JSON.stringify({
        header: { revision: h.currentRev },
        ...(h.hash !== 0 ? { hash: h.hash } : {}),
        ...(h.compactRev !== 0 ? { compact_revision: h.compactRev } : {}),
      }));
    });
  };
}

/** A peer's answer: its hash at a revision, or why it has none (etcd's rpctypes errors). */
type PeerHash = { id: NodeId; hash: HashKV } | { id: NodeId; error: string };

/** Asks a member for its HashKV at `rev` on each of its peer URLs until one answers (etcd's getPeerHashKVs). */
async function peerHashKV(m: Member, rev: number, timeoutMs: number): Promise<PeerHash> {
  let error = "no peer URL";
  for (const url of m.peerUrls) {
    try {
      const { status, body } = await getWithBody(
        new URL(PEER_HASHKV_PATH, url),
        JSON.stringify({ revision: rev }),
        timeoutMs,
      );
      if (status === 400 && body.includes(ErrCompacted.message)) return { id: m.id, error: ErrCompacted.message };
      if (status === 400 && body.includes(ErrFutureRev.message)) return { id: m.id, error: ErrFutureRev.message };
      if (status !== 200) throw new Error(`unknown error: ${body.trim()}`);
      const j = JSON.parse(body);
      return {
        id: m.id,
        hash: {
          hash: j.hash ?? 0,
          currentRev: Number(j.header?.revision ?? 0),
          compactRev: Number(j.compact_revision ?? 0),
        },
      };
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
  }
  return { id: m.id, error };
}

/** A GET with a body, as etcd's hashkv request is (fetch refuses one). */
function getWithBody(url: URL, body: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "GET",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      timeout: timeoutMs,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => text += c);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

export interface CorruptCheckView {
  self: NodeId;
  members: () => Member[];
  hashByRev: (rev: number) => HashKV;
  timeoutMs: number;
  logger: Logger;
}

function askPeers(v: CorruptCheckView, rev: number): Promise<PeerHash[]> {
  return Promise.all(v.members().filter((m) => m.id !== v.self).map((m) => peerHashKV(m, rev, v.timeoutMs)));
}

/**
 * etcd's CheckInitialHashKV: this member's hash against each peer's at this member's revision; a peer with the same
 * compacted revision and another hash is a data inconsistency, and the member must not serve.
 */
export async function checkInitialHashKV(v: CorruptCheckView): Promise<void> {
  v.logger.info("starting initial corruption check", {
    "local-member-id": v.self.toString(16),
    timeout: `${v.timeoutMs / 1000}s`,
  });
  const local = v.hashByRev(0);
  let mismatch = 0;
  for (const p of await askPeers(v, local.currentRev)) {
    const fields = {
      "local-member-id": v.self.toString(16),
      "local-member-revision": local.currentRev,
      "local-member-compact-revision": local.compactRev,
      "local-member-hash": local.hash,
      "remote-peer-id": p.id.toString(16),
    };
    if ("error" in p) {
      if (p.error === ErrFutureRev.message) v.logger.warn("cannot fetch hash from slow remote peer", fields);
      else if (p.error === ErrCompacted.message) {
        v.logger.warn("cannot fetch hash from remote peer; local member is behind", fields);
      } else v.logger.warn("failed hash kv request", { ...fields, error: p.error });
      continue;
    }
    if (p.hash.hash === local.hash) continue;
    const remote = {
      ...fields,
      "remote-peer-revision": p.hash.currentRev,
      "remote-peer-compact-revision": p.hash.compactRev,
      "remote-peer-hash": p.hash.hash,
    };
    if (p.hash.compactRev === local.compactRev) {
      v.logger.warn("found different hash values from remote peer", remote);
      mismatch++;
    } else v.logger.warn("found different compact revision values from remote peer", remote);
  }
  if (mismatch > 0) throw new Error(`${v.self.toString(16)} found data inconsistency with peers`);
  v.logger.info("initial corruption checking passed; no corruption", { "local-member-id": v.self.toString(16) });
}

/**
 * One pass of etcd's checkHashKV, run by the leader: its hash before and after a linearizable read must agree at an
 * unchanged revision, and every follower must be at or behind the leader's revision and compaction, with the leader's
 * hash when it has the leader's compacted revision. Returns the members found inconsistent (the caller raises CORRUPT).
 */
export async function checkHashKV(v: CorruptCheckView, readBarrier: () => Promise<void>): Promise<NodeId[]> {
  const first = v.hashByRev(0);
  const peers = await askPeers(v, first.currentRev);
  await readBarrier();
  const second = v.hashByRev(0);
  const corrupt: NodeId[] = [];
  const fields = (p: { id: NodeId; hash: HashKV }) => ({
    "leader-revision": second.currentRev,
    "leader-compact-revision": second.compactRev,
    "leader-hash": first.hash,
    "follower-peer-id": p.id.toString(16),
    "follower-revision": p.hash.currentRev,
    "follower-compact-revision": p.hash.compactRev,
    "follower-hash": p.hash.hash,
  });
  if (second.hash !== first.hash && second.currentRev === first.currentRev && second.compactRev === first.compactRev) {
    v.logger.warn("found hash mismatch", {
      revision: first.currentRev,
      "compact-revision": first.compactRev,
      hash: first.hash,
      "revision-2": second.currentRev,
      "hash-2": second.hash,
    });
    corrupt.push(v.self);
  }
  let checked = 0;
  for (const p of peers) {
    if ("error" in p) continue;
    checked++;
    if (p.hash.currentRev > second.currentRev) {
      v.logger.warn("revision from follower must be less than or equal to leader's", fields(p));
      corrupt.push(p.id);
    } else if (p.hash.compactRev > second.compactRev) {
      v.logger.warn("compact revision from follower must be less than or equal to leader's", fields(p));
      corrupt.push(p.id);
    } else if (p.hash.compactRev === first.compactRev && p.hash.hash !== first.hash) {
      v.logger.warn("same compact revision then hashes must match", fields(p));
      corrupt.push(p.id);
    }
  }
  v.logger.info("finished peer corruption check", { "number-of-peers-checked": checked });
  return corrupt;
}
