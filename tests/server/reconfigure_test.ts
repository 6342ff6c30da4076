// --strict-reconfig-check's rules (etcd's mayAddMember, mayRemoveMember, mayPromoteMember, IsReadyTo*), on a
// membership and a transport's reachability made by hand.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { StateType } from "../../raft/types.ts";
import type { Status } from "../../raft/status.ts";
import { RaftCluster } from "../../server/membership.ts";
import {
  ErrGRPCLearnerNotReady,
  ErrGRPCMemberNotEnoughStarted,
  ErrGRPCNotLeader,
  ErrGRPCUnhealthy,
} from "../../server/apply_errors.ts";
import { mayAddMember, mayPromoteMember, mayRemoveMember, type ReconfigureView } from "../../server/reconfigure.ts";

const NOW = 1_000_000;

/** Members 1..n (started ones have a name), a learner 9 if asked; `since` maps peers to their ActiveSince. */
function view(started: number[], unstarted: number[], since: Record<number, number>, strict = true): ReconfigureView {
  const cluster = new RaftCluster(7n, 1n);
  for (const i of [...started, ...unstarted]) {
    cluster.add({
      id: BigInt(i),
      name: started.includes(i) ? `m${i}` : "",
      peerUrls: [`http://127.0.0.1:${i}`],
      clientUrls: [],
      isLearner: i === 9,
    });
  }
  return { cluster, self: 1n, strict, activeSince: (id) => since[Number(id)] ?? 0, now: () => NOW };
}
const longAgo = NOW - 60_000, justNow = NOW - 1000;

Deno.test("reconfigure: adding needs every voter reached for 5 s, and a voter a started quorum after the add", () => {
  assertEquals(mayAddMember(view([1, 2, 3], [], { 2: longAgo, 3: longAgo }), false), undefined);
  // a peer reached only a second ago does not count yet
  assertEquals(mayAddMember(view([1, 2, 3], [], { 2: longAgo, 3: justNow }), false), ErrGRPCUnhealthy);
  assertEquals(mayAddMember(view([1, 2, 3], [], { 2: longAgo }), false), ErrGRPCUnhealthy);
  // 2 started of 4 voters after the add: below the quorum of 3
  assertEquals(mayAddMember(view([1, 2], [3], { 2: longAgo, 3: longAgo }), false), ErrGRPCMemberNotEnoughStarted);
  // a second member for a one-member cluster is always allowed to be added (restoring a cluster's data)
  assertEquals(mayAddMember(view([1], [], {}), false), undefined);
  // a learner skips the started quorum, not the health check (etcd 3.4; found by the cluster differential test)
  assertEquals(mayAddMember(view([1, 2], [3], { 2: longAgo, 3: longAgo }), true), undefined);
  assertEquals(mayAddMember(view([1, 2], [3], { 2: longAgo }), true), ErrGRPCUnhealthy);
  // a non-strict member skips the checks
  assertEquals(mayAddMember(view([1, 2], [3], {}, false), false), undefined);
});

Deno.test("reconfigure: removing keeps a started quorum of the rest; a peer that is down may go", () => {
  const all = { 2: longAgo, 3: longAgo };
  assertEquals(mayRemoveMember(view([1, 2, 3], [], all), 3n), undefined);
  // down: not part of the active quorum, safe to remove
  assertEquals(mayRemoveMember(view([1, 2, 3], [], { 2: longAgo }), 3n), undefined);
  // removing a live one while another is down leaves one reachable of two: refused
  assertEquals(mayRemoveMember(view([1, 2, 3], [], { 3: longAgo }), 3n), ErrGRPCUnhealthy);
  // the rest would have too few started members
  assertEquals(mayRemoveMember(view([1, 2], [3, 4], all), 2n), ErrGRPCMemberNotEnoughStarted);
  assertEquals(mayRemoveMember(view([1, 2, 3, 9], [], all), 9n), undefined); // a learner
});

Deno.test("reconfigure: only the leader promotes, and only a learner within 90% of its log", () => {
  const status = (state: StateType, learnerMatch: number): Status => ({
    id: 1n,
    hardState: { term: 2, vote: 1n, commit: 100 },
    softState: { lead: 1n, raftState: state },
    applied: 100,
    progress: new Map([
      [1n, {
        match: 100,
        next: 101,
        state: 0,
        isLearner: false,
        recentActive: true,
        paused: false,
        inflight: 0,
        pendingSnapshot: 0,
      }],
      [9n, {
        match: learnerMatch,
        next: learnerMatch + 1,
        state: 0,
        isLearner: true,
        recentActive: true,
        paused: false,
        inflight: 0,
        pendingSnapshot: 0,
      }],
    ]),
    leadTransferee: 0n,
    config: "",
  });
  const v = view([1, 2, 3, 9], [], { 2: longAgo, 3: longAgo });
  assertEquals(mayPromoteMember(v, status(StateType.Follower, 100), 9n), ErrGRPCNotLeader);
  assertEquals(mayPromoteMember(v, status(StateType.Leader, 89), 9n), ErrGRPCLearnerNotReady);
  assertEquals(mayPromoteMember(v, status(StateType.Leader, 90), 9n), undefined);
});
