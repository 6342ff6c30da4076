// The etcd API services this member serves, bound to its EtcdServer. Methods left out
// answer Unimplemented on every protocol (the transport's rule); README lists them.
import { Cluster, KV, Lease, Maintenance, Watch } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { register, type ServiceRegistration, type ServiceRegistry } from "../rpc/services.ts";
import {
  ErrGPRCNotSupportedForLearner,
  ErrGRPCMemberBadURLs,
  ErrGRPCNoLeader,
  ErrGRPCNotLeader,
  toRpcError,
} from "./apply_errors.ts";
import type { Member } from "./membership.ts";
import { parseUrls, urlString } from "./urls.ts";
import { requiresLeader } from "./require_leader.ts";
import type { HandlerContext } from "@connectrpc/connect";
import { alarmString } from "./alarm_store.ts";
import type { EtcdServer } from "./etcdserver.ts";
import { ETCD_SERVER_VERSION } from "./version.ts";
import { watchHandler } from "./watch_server.ts";
import { snapshot } from "./snapshot_server.ts";
import { Lock } from "../rpc/gen/v3lockpb/v3lock_pb.ts";
import { Election } from "../rpc/gen/v3electionpb/v3election_pb.ts";
import { lock, unlock } from "./concurrency/lock_server.ts";
import { asClient } from "./concurrency/kv_ops.ts";
import { campaign, leader, observe, proclaim, resign } from "./concurrency/election_server.ts";

export function etcdServices(s: EtcdServer): ServiceRegistry {
  // the cluster service's header has no revision (etcd's ClusterServer.header)
  const clusterHeader = () => s.header(0);
  const registry: ServiceRegistry = [
    register(KV, {
      range: (req) => s.range(req),
      put: (req) => s.put(req),
      deleteRange: (req) => s.deleteRange(req),
      txn: (req) => s.txn(req),
      compact: (req) => s.compact(req),
    }),
    register(Maintenance, {
      status: () => {
        const st = s.status();
        return {
          header: s.header(s.store.rev),
          version: ETCD_SERVER_VERSION,
          dbSize: BigInt(st.dbSize),
          dbSizeInUse: BigInt(st.dbSizeInUse),
          leader: st.leader,
          raftIndex: BigInt(st.raftIndex),
          raftTerm: BigInt(st.raftTerm),
          raftAppliedIndex: BigInt(st.raftAppliedIndex),
          // etcd's order: no leader first, then every raised alarm as it prints one
          errors: [...(st.leader === 0n ? [ErrGRPCNoLeader.message] : []), ...s.alarmList().map(alarmString)],
          isLearner: st.isLearner,
        };
      },
      // etcd answers Defragment with an empty response, no header
      defragment: async () => {
        await s.defragment();
        return {};
      },
      hash: () => ({ header: s.header(s.store.rev), hash: s.store.hash().hash }),
      hashKV: (req) => {
        let h;
        try {
          h = s.store.hashByRev(Number(req.revision));
        } catch (err) {
          throw toRpcError(err);
        }
        return { header: s.header(h.currentRev), hash: h.hash, compactRevision: BigInt(h.compactRev) };
      },
      alarm: (req) => s.alarm(req),
      snapshot: () => snapshot(s.backend, s.logger),
      // etcd answers with an empty response, no header
      moveLeader: async (req) => {
        if (s.status().leader !== s.id) throw ErrGRPCNotLeader;
        await s.moveLeader(req.targetID);
        return {};
      },
    }),
    register(Watch, {
      watch: watchHandler({
        watchable: s.watchable,
        header: (rev) => s.sharedHeader(rev),
        // etcd's limit for a watch response: the request limit plus gRPC's overhead allowance
        maxRequestBytes: s.cfg.maxRequestBytes + 512 * 1024,
        progressNotifyIntervalMs: s.cfg.watchProgressNotifyIntervalMs,
        eventsSent: s.metrics.watchEventsTotal,
        eventsPending: s.metrics.watchPendingEvents,
        onLeaderLost: (cb) => s.leaderMonitor.onLost(cb),
      }),
    }),
    register(Lease, {
      leaseGrant: (req) => s.leaseGrant(req),
      leaseRevoke: (req) => s.leaseRevoke(req),
      leaseKeepAlive: async function* (reqs) {
        for await (const req of reqs) {
          // the header is taken before the renewal, so its revision is never past a revocation the renewal misses
          const header = s.header(s.store.rev);
          yield { header, ID: req.ID, TTL: BigInt(await s.leaseRenew(req.ID)) };
        }
      },
      leaseTimeToLive: (req) => s.leaseTimeToLive(req),
      leaseLeases: () => s.leaseLeases(),
    }),
    register(Lock, {
      lock: (req, ctx) => asClient(() => lock(s, req, ctx.signal)),
      unlock: (req) => asClient(() => unlock(s, req)),
    }),
    register(Election, {
      campaign: (req, ctx) => asClient(() => campaign(s, req, ctx.signal)),
      proclaim: (req) => asClient(() => proclaim(s, req)),
      leader: (req) => asClient(() => leader(s, req)),
      observe: (req, ctx) => observe(s, req, ctx.signal),
      resign: (req) => asClient(() => resign(s, req)),
    }),
    register(Cluster, {
      memberAdd: async (req) => {
        const peerUrls = memberUrls(req.peerURLs);
        const { member, members } = await s.addMember(peerUrls, req.isLearner);
        return {
          header: clusterHeader(),
          member: { ID: member.id, name: "", peerURLs: member.peerUrls, clientURLs: [], isLearner: member.isLearner },
          members: members.map(toPb),
        };
      },
      memberRemove: async (req) => ({ header: clusterHeader(), members: (await s.removeMember(req.ID)).map(toPb) }),
      memberUpdate: async (req) => ({
        header: clusterHeader(),
        members: (await s.updateMember(req.ID, memberUrls(req.peerURLs))).map(toPb),
      }),
      memberList: () => ({ header: clusterHeader(), members: s.cluster.list().map(toPb) }),
      memberPromote: async (req) => ({ header: clusterHeader(), members: (await s.promoteMember(req.ID)).map(toPb) }),
    }),
  ];
  return guarded(s, registry);
}

function toPb(m: Member) {
  return { ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

/** A member's peer URLs as etcd's types.NewURLs takes them (checked, sorted); etcd's error otherwise. */
function memberUrls(urls: string[]): string[] {
  try {
    return urls.map((u) => urlString(parseUrls(u)[0])).sort();
  } catch {
    throw ErrGRPCMemberBadURLs;
  }
}

/**
 * etcd's v3rpc interceptors: a learner serves Status and serializable ranges only (every other call, streams included,
 * fails with "rpc not supported for learner"), and a call that requires a leader (WithRequireLeader) fails with "no
 * leader" while there is none. Streaming implementations are handed on unwrapped, so what they return keeps its shape.
 */
function guarded(s: EtcdServer, registry: ServiceRegistry): ServiceRegistry {
  return registry.map(({ service, impl }) => {
    const wrapped: Record<string, unknown> = {};
    for (const method of service.methods) {
      const fn = impl[method.localName] as ((req: unknown, ctx: HandlerContext) => unknown) | undefined;
      if (fn === undefined) continue;
      const path = `/${service.typeName}/${method.name}`;
      if (path === "/etcdserverpb.Maintenance/Status") {
        wrapped[method.localName] = fn;
      } else if (method.methodKind === "unary") {
        wrapped[method.localName] = (req: unknown, ctx: HandlerContext) => {
          if (s.isLearner && !(path === "/etcdserverpb.KV/Range" && (req as { serializable: boolean }).serializable)) {
            return Promise.reject(ErrGPRCNotSupportedForLearner);
          }
          // the header is looked at only without a leader: a call's headers are decoded lazily
          if (!s.hasLeader && requiresLeader(ctx.requestHeader)) return Promise.reject(ErrGRPCNoLeader);
          return fn.call(impl, req, ctx);
        };
      } else {
        wrapped[method.localName] = (req: unknown, ctx: HandlerContext) => {
          if (s.isLearner) return failedStream(ErrGPRCNotSupportedForLearner);
          if (!s.hasLeader && requiresLeader(ctx.requestHeader)) return failedStream(ErrGRPCNoLeader);
          return fn.call(impl, req, ctx);
        };
      }
    }
    return { service, impl: wrapped as ServiceRegistration["impl"] };
  });
}

// deno-lint-ignore require-yield -- a stream that fails before its first message
async function* failedStream(err: Error): AsyncGenerator<never> {
  throw err;
}
