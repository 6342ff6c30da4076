import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  decodeConfChange,
  EntryType,
  ErrProposalDropped,
  MemoryStorage,
  MessageType,
  RawNode,
  type Ready,
  StateType,
} from "../../raft/mod.ts";
import { newMessage } from "../../raft/util.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Persists and applies one Ready the way a server would; returns applied normal-entry payloads. */
function handle(rn: RawNode, s: MemoryStorage, rd: Ready): string[] {
  if (rd.snapshot) s.applySnapshot(rd.snapshot);
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
  const out: string[] = [];
  for (const e of rd.committedEntries) {
    if (e.type === EntryType.ConfChange) rn.applyConfChange(decodeConfChange(e.data));
    else if (e.data.length > 0) out.push(dec(e.data));
  }
  rn.advance(rd);
  return out;
}

function drain(rn: RawNode, s: MemoryStorage): string[] {
  const out: string[] = [];
  while (rn.hasReady()) out.push(...handle(rn, s, rn.ready()));
  return out;
}

Deno.test("rawnode: single voter bootstraps, campaigns, proposes and commits", () => {
  const s = new MemoryStorage();
  const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s });
  rn.bootstrap([{ id: 1n }]);
  assert(rn.hasReady());
  const rd = rn.ready();
  assertEquals(rd.entries.length, 1);
  assertEquals(rd.committedEntries.length, 1);
  assertEquals(rd.hardState, { term: 1, vote: 0n, commit: 1 });
  handle(rn, s, rd);
  assert(!rn.hasReady());

  rn.campaign();
  const rd2 = rn.ready();
  assertEquals(rd2.softState, { lead: 1n, raftState: StateType.Leader });
  assertEquals(rd2.hardState, { term: 2, vote: 1n, commit: 2 });
  handle(rn, s, rd2);

  rn.propose(enc("a"));
  rn.propose(enc("b"));
  const rd3 = rn.ready();
  assertEquals(rd3.entries.map((e) => dec(e.data)), ["a", "b"]);
  assertEquals(rd3.committedEntries.map((e) => dec(e.data)), ["a", "b"]);
  assert(rd3.mustSync);
  handle(rn, s, rd3);
  assert(!rn.hasReady());
  assertEquals(rn.status().applied, 4);
});

Deno.test("rawnode: restart from storage with snapshot, hard state and entries", () => {
  const s = new MemoryStorage();
  const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s });
  rn.bootstrap([{ id: 1n }]);
  drain(rn, s);
  rn.campaign();
  drain(rn, s);
  for (let i = 0; i < 5; i++) rn.propose(enc(`x${i}`));
  assertEquals(drain(rn, s), ["x0", "x1", "x2", "x3", "x4"]);
  const cs = { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  s.createSnapshot(5, cs, enc("state@5"));
  s.compact(5);

  // A fresh node over the same storage picks up term, commit and membership.
  const rn2 = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, applied: 5 });
  const st = rn2.status();
  assertEquals(st.hardState.term, 2);
  assertEquals(st.hardState.commit, 7);
  assert(rn2.hasReady());
  assertEquals(drain(rn2, s), ["x3", "x4"]);
  rn2.campaign();
  drain(rn2, s);
  assertEquals(rn2.status().softState.raftState, StateType.Leader);
  rn2.propose(enc("y"));
  assertEquals(drain(rn2, s), ["y"]);
});

Deno.test("rawnode: heartbeat() sends a leader's heartbeats now, a follower's nothing", () => {
  const s1 = new MemoryStorage(), s2 = new MemoryStorage();
  const n1 = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 5, storage: s1 });
  const n2 = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 5, storage: s2 });
  for (const [n, s] of [[n1, s1], [n2, s2]] as const) {
    n.bootstrap([{ id: 1n }, { id: 2n }]);
    drain(n, s);
  }
  // n1 wins n2's vote
  n1.campaign();
  const votes = n1.ready();
  handle(n1, s1, votes);
  for (const m of votes.messages) n2.step(m);
  const granted = n2.ready();
  handle(n2, s2, granted);
  for (const m of granted.messages) n1.step(m);
  drain(n1, s1);
  assertEquals(n1.status().softState.raftState, StateType.Leader);
  n1.heartbeat();
  assertEquals(n1.ready().messages.map((m) => [m.type, m.to]), [[MessageType.MsgHeartbeat, 2n]]);
  n2.heartbeat();
  assertEquals(n2.hasReady() ? n2.ready().messages : [], []);
});

Deno.test("rawnode: follower without leader drops proposals", () => {
  const s = new MemoryStorage();
  const rn = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s });
  rn.bootstrap([{ id: 1n }, { id: 2n }]);
  drain(rn, s);
  assertThrows(() => rn.propose(enc("a")), ErrProposalDropped.message);
});

Deno.test("rawnode: hasPendingSnapshot tells a snapshot raft took until its Ready hands it out", () => {
  const s2 = new MemoryStorage();
  const n2 = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: s2 });
  n2.bootstrap([{ id: 1n }, { id: 2n }]);
  drain(n2, s2);
  assert(!n2.hasPendingSnapshot());
  const cs = { voters: [1n, 2n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const snap = (index: number) => ({
    ...newMessage(MessageType.MsgSnap, 2n, 1n),
    term: 3,
    snapshot: { data: enc("state"), metadata: { index, term: 3, confState: cs } },
  });
  n2.step(snap(50));
  assert(n2.hasPendingSnapshot());
  const rd = n2.ready();
  assertEquals(rd.snapshot?.metadata.index, 50);
  handle(n2, s2, rd);
  assert(!n2.hasPendingSnapshot());
  // one raft does not take (it has committed that far): nothing pending
  n2.step(snap(40));
  assert(!n2.hasPendingSnapshot());
});
