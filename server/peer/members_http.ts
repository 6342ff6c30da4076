// The membership endpoints on the peer port (etcd's etcdhttp peer handlers): `GET /members` (what a joining member
// asks its peers for) and `POST /members/promote/<id>` (a follower asks the leader to promote a learner), with the
// client side of both.
import { type PeerRequest, type PeerResponse, plainError } from "./http.ts";
import type { NodeId } from "../../raft/types.ts";
import {
  ErrGRPCLearnerNotReady,
  ErrGRPCMemberNotFound,
  ErrGRPCMemberNotLearner,
  ErrGRPCTimeout,
  RpcError,
} from "../apply_errors.ts";
import { type Member, memberJSON, parseWithIds } from "../membership.ts";

export const MEMBERS_PREFIX = "/members";
export const MEMBER_PROMOTE_PREFIX = "/members/promote/";

/** etcd's texts for the promote endpoint's refusals (membership.ErrIDNotFound, ErrMemberNotLearner). */
const ID_NOT_FOUND = "membership: ID not found";
const NOT_LEARNER = "membership: can only promote a learner member";

/** Members as etcd's peer endpoints write them: a JSON array of etcd's Member encoding, then a newline. */
export function membersJSON(members: Member[]): string {
  return `[${members.map((m) => memberJSON(m)).join(",")}]\n`;
}

/** Reads membersJSON's encoding (an etcd member's or a detcd member's). */
export function parseMembersJSON(text: string): Member[] {
  const list = parseWithIds(text) as Record<string, unknown>[];
  if (!Array.isArray(list)) throw new Error("members: not a JSON array");
  return list.map((j) => {
    if (typeof j.id !== "bigint") throw new Error("members: a member without an ID");
    return {
      id: j.id,
      name: (j.name ?? "") as string,
      peerUrls: (j.peerURLs ?? []) as string[],
      clientUrls: (j.clientURLs ?? []) as string[],
      isLearner: j.isLearner === true,
    };
  });
}

export function membersHandler(opts: {
  clusterId: () => NodeId;
  members: () => Member[];
  promote: (id: NodeId) => Promise<Member[]>;
}): (req: PeerRequest, res: PeerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    res.setHeader("X-Etcd-Cluster-ID", opts.clusterId().toString(16));
    if (path === MEMBERS_PREFIX) {
      if (req.method !== "GET") return void plainError(res.setHeader("allow", "GET"), 405, "Method Not Allowed");
      res.writeHead(200, { "content-type": "application/json" }).end(membersJSON(opts.members()));
      return;
    }
    if (req.method !== "POST") return void plainError(res.setHeader("allow", "POST"), 405, "Method Not Allowed");
    const idText = path.slice(MEMBER_PROMOTE_PREFIX.length);
    if (!/^\d{1,20}$/.test(idText) || BigInt(idText) >= 1n << 64n) {
      return void plainError(res, 404, `member ${idText} not found in cluster`);
    }
    opts.promote(BigInt(idText)).then(
      (members) => res.writeHead(200, { "content-type": "application/json" }).end(membersJSON(members)),
      (err) => {
        if (err === ErrGRPCMemberNotFound) plainError(res, 404, ID_NOT_FOUND);
        else if (err === ErrGRPCMemberNotLearner) plainError(res, 412, NOT_LEARNER);
        else if (err === ErrGRPCLearnerNotReady) plainError(res, 412, err.message);
        else if (err === ErrGRPCTimeout) plainError(res, 408, err.message);
        else plainError(res, 500, err instanceof Error ? err.message : String(err));
      },
    );
  };
}

/**
 * Asks the leader at peer URL `url` to promote learner `id` (etcd's promoteMemberHTTP): the members once it is
 * done, an RpcError when the leader refuses for good, undefined when it could not answer (the caller retries).
 */
export async function promoteOnLeader(url: string, id: NodeId, timeoutMs: number): Promise<Member[] | undefined> {
  let res: Response, body: string;
  try {
    res = await fetch(new URL(`${MEMBER_PROMOTE_PREFIX}${BigInt.asUintN(64, id)}`, url), {
      method: "POST",
      signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
    });
    body = await res.text();
  } catch {
    return undefined;
  }
  if (res.status === 200) return parseMembersJSON(body);
  if (res.status === 408) throw ErrGRPCTimeout;
  if (res.status === 404) throw ErrGRPCMemberNotFound;
  if (res.status === 412) {
    // both refusals share the status; the learner-not-ready text holds the other's, so it is looked for first
    if (body.includes(ErrGRPCLearnerNotReady.message.replace(/^etcdserver: /, ""))) throw ErrGRPCLearnerNotReady;
    if (body.includes(NOT_LEARNER)) throw ErrGRPCMemberNotLearner;
    throw new RpcError(ErrGRPCMemberNotLearner.code, `member promote: unknown error(${body.trim()})`);
  }
  return undefined;
}
