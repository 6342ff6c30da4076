// Tests following the Raft paper (§5.2 election, §5.3 replication, §5.4 safety),
// after etcd's raft_paper_test.go.

import { assert, assertEquals } from "./assert.ts";
import { ent, hup, msg, Network, newTestRaft, newTestStorage, nextEnts, propMsg, readMessages } from "./network.ts";
import { compareIds, type Message, MessageType, StateType } from "../../raft/types.ts";
import type { Raft } from "../../raft/raft.ts";

const MT = MessageType;

function becomeState(r: Raft, st: StateType, term: number, lead = 2n): void {
  if (st === StateType.Follower) r.becomeFollower(term, lead);
  else if (st === StateType.Candidate) {
    r.becomeFollower(term - 1, 0n);
    r.becomeCandidate();
  } else {
    r.becomeFollower(term - 1, 0n);
    r.becomeCandidate();
    r.becomeLeader();
  }
}

function commitNoopEntry(r: Raft, s: ReturnType<typeof newTestStorage>): void {
  assertEquals(r.state, StateType.Leader);
  r.bcastAppend();
  for (const m of readMessages(r)) {
    if (m.type !== MT.MsgApp || m.entries.length !== 1) throw new Error("not a message to append noop entry");
    r.step(msg(MT.MsgAppResp, m.to, 1, { term: r.term, index: m.entries[0].index }));
  }
  readMessages(r);
  nextEnts(r, s);
}

function types(ms: Message[]): string[] {
  return ms.map((m) => `${MT[m.type]}->${m.to}`);
}

// §5.1: a server seeing a higher term adopts it and reverts to follower.
Deno.test("paper 5.1: higher term in any message makes a node follower", () => {
  for (const st of [StateType.Follower, StateType.Candidate, StateType.Leader]) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    becomeState(r, st, 1);
    r.step(msg(MT.MsgApp, 0, 1, { term: 2 }));
    assertEquals(r.term, 2, StateType[st]);
    assertEquals(r.state, StateType.Follower, StateType[st]);
  }
});

Deno.test("paper 5.1: stale-term messages are ignored", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2]));
  r.becomeFollower(2, 0n);
  r.step(msg(MT.MsgApp, 2, 1, { term: 1, entries: [ent(1, 1)], index: 0 }));
  assertEquals(r.raftLog.lastIndex(), 0);
  assertEquals(readMessages(r).length, 0);
});

Deno.test("paper 5.2: servers start as followers", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
  assertEquals(r.state, StateType.Follower);
});

Deno.test("paper 5.2: leader broadcasts heartbeats every heartbeat timeout", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
  becomeState(r, StateType.Leader, 1);
  readMessages(r);
  r.tick();
  const ms = readMessages(r).sort((a, b) => compareIds(a.to, b.to));
  assertEquals(types(ms), ["MsgHeartbeat->2", "MsgHeartbeat->3"]);
  assert(ms.every((m) => m.term === 1 && m.commit === 0));
});

Deno.test("paper 5.2: follower/candidate start an election on timeout", () => {
  for (const st of [StateType.Follower, StateType.Candidate]) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    if (st === StateType.Candidate) becomeState(r, st, 1);
    const before = r.term;
    for (let i = 0; i < 2 * 10; i++) r.tick();
    assertEquals(r.term, before + 1);
    assertEquals(r.state, StateType.Candidate);
    assertEquals(r.vote, 1n);
    const ms = readMessages(r).filter((m) => m.term === r.term).sort((a, b) => compareIds(a.to, b.to));
    assertEquals(types(ms), ["MsgVote->2", "MsgVote->3"]);
  }
});

Deno.test("paper 5.2: election outcome in one round of votes", () => {
  const cases: [number, Record<number, boolean>, StateType][] = [
    [1, {}, StateType.Leader],
    [3, { 2: true, 3: true }, StateType.Leader],
    [3, { 2: true }, StateType.Leader],
    [5, { 2: true, 3: true, 4: true, 5: true }, StateType.Leader],
    [5, { 2: true, 3: true, 4: true }, StateType.Leader],
    [5, { 2: true, 3: true }, StateType.Leader],
    [3, { 2: false, 3: false }, StateType.Follower],
    [5, { 2: false, 3: false, 4: false, 5: false }, StateType.Follower],
    [5, { 2: true, 3: false, 4: false, 5: false }, StateType.Follower],
    [3, {}, StateType.Candidate],
    [5, { 2: true }, StateType.Candidate],
    [5, { 2: false, 3: false }, StateType.Candidate],
    [5, {}, StateType.Candidate],
  ];
  for (const [size, votes, want] of cases) {
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const r = newTestRaft(1, 10, 1, newTestStorage(ids));
    r.step(hup(1));
    for (const [id, v] of Object.entries(votes)) {
      r.step(msg(MT.MsgVoteResp, Number(id), 1, { term: r.term, reject: !v }));
    }
    assertEquals(StateType[r.state], StateType[want], `size ${size} votes ${JSON.stringify(votes)}`);
    assertEquals(r.term, 1);
  }
});

Deno.test("paper 5.2: follower votes first-come-first-served, at most once per term", () => {
  const cases: [number, number, boolean][] = [[0, 2, false], [0, 3, false], [2, 2, false], [3, 3, false], [
    2,
    3,
    true,
  ], [3, 2, true]];
  for (const [vote, nvote, wreject] of cases) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    r.term = 1;
    r.vote = BigInt(vote);
    r.step(msg(MT.MsgVote, nvote, 1, { term: 1 }));
    const ms = readMessages(r);
    assertEquals(ms.length, 1);
    assertEquals(ms[0].reject, wreject, `vote ${vote} nvote ${nvote}`);
    assertEquals(ms[0].type, MT.MsgVoteResp);
  }
});

Deno.test("paper 5.2: candidate falls back to follower on a leader's append", () => {
  for (const term of [1, 2]) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    r.step(hup(1));
    assertEquals(r.state, StateType.Candidate);
    r.step(msg(MT.MsgApp, 2, 1, { term }));
    assertEquals(r.state, StateType.Follower);
    assertEquals(r.term, term);
  }
});

Deno.test("paper 5.2: election timeouts are randomized in [et, 2et)", () => {
  for (const st of [StateType.Follower, StateType.Candidate]) {
    const seen = new Set<number>();
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    for (let round = 0; round < 50 * 10; round++) {
      becomeState(r, st, r.term + 1);
      let time = 0;
      while (readMessages(r).length === 0) {
        r.tick();
        time++;
      }
      seen.add(time);
    }
    for (let t = 10; t < 20; t++) assert(seen.has(t), `timeout ${t} never seen for ${StateType[st]}`);
    assert([...seen].every((t) => t >= 10 && t < 20), "timeout outside [et, 2et)");
  }
});

Deno.test("paper 5.2: different nodes rarely time out together", () => {
  let conflicts = 0;
  for (let round = 0; round < 1000; round++) {
    const rs = [1, 2, 3, 4, 5].map((id) =>
      newTestRaft(id, 10, 1, newTestStorage([1, 2, 3, 4, 5]), { seed: round * 7 + id })
    );
    let timedOut = 0;
    while (timedOut === 0) {
      for (const r of rs) {
        r.tick();
        if (readMessages(r).length > 0) timedOut++;
      }
    }
    if (timedOut > 1) conflicts++;
  }
  assert(conflicts / 1000 <= 0.3, `conflict rate ${conflicts / 1000}`);
});

Deno.test("paper 5.3: leader appends a proposal and replicates it", () => {
  const s = newTestStorage([1, 2, 3]);
  const r = newTestRaft(1, 10, 1, s);
  becomeState(r, StateType.Leader, 1);
  commitNoopEntry(r, s);
  const li = r.raftLog.lastIndex();
  r.step(propMsg(1));
  assertEquals(r.raftLog.lastIndex(), li + 1);
  assertEquals(r.raftLog.committed, li);
  const ms = readMessages(r).sort((a, b) => compareIds(a.to, b.to));
  assertEquals(types(ms), ["MsgApp->2", "MsgApp->3"]);
  assert(ms.every((m) => m.index === li && m.logTerm === 1 && m.commit === li && m.entries.length === 1));
});

Deno.test("paper 5.3: leader commits once a majority acknowledges", () => {
  for (
    const [size, acks, wcommit] of [
      [1, 0, true],
      [3, 0, false],
      [3, 1, true],
      [3, 2, true],
      [5, 0, false],
      [
        5,
        1,
        false,
      ],
      [5, 2, true],
      [5, 4, true],
    ] as [number, number, boolean][]
  ) {
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const s = newTestStorage(ids);
    const r = newTestRaft(1, 10, 1, s);
    becomeState(r, StateType.Leader, 1);
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    r.step(propMsg(1));
    for (const m of readMessages(r)) {
      if (Number(m.to) - 1 <= acks) r.step(msg(MT.MsgAppResp, m.to, 1, { term: m.term, index: li + 1 }));
    }
    assertEquals(r.raftLog.committed > li, wcommit, `size ${size} acks ${acks}`);
  }
});

Deno.test("paper 5.3: committing an entry commits all preceding entries", () => {
  for (const prev of [[], [ent(2, 1)], [ent(1, 1), ent(2, 2)], [ent(1, 1)]]) {
    const s = newTestStorage([1, 2, 3]);
    s.append(prev);
    const r = newTestRaft(1, 10, 1, s);
    r.term = 2;
    r.becomeCandidate();
    r.becomeLeader();
    r.step(propMsg(1));
    for (const m of readMessages(r)) {
      r.step(msg(MT.MsgAppResp, m.to, 1, { term: m.term, index: prev.length + 2 }));
    }
    const li = prev.length;
    const got = nextEnts(r, s).map((e) => `${e.term}/${e.index}`);
    const want = [...prev.map((e) => `${e.term}/${e.index}`), `3/${li + 1}`, `3/${li + 2}`];
    assertEquals(got, want);
  }
});

Deno.test("paper 5.3: follower commits what the leader says is committed", () => {
  for (
    const [ents, commit] of [[[ent(1, 1, "a")], 1], [[ent(1, 1, "a"), ent(1, 2, "b")], 1], [
      [ent(1, 1, "a"), ent(1, 2, "b")],
      2,
    ]] as const
  ) {
    const s = newTestStorage([1, 2, 3]);
    const r = newTestRaft(1, 10, 1, s);
    r.becomeFollower(1, 2n);
    r.step(msg(MT.MsgApp, 2, 1, { term: 1, entries: ents.slice(), commit }));
    assertEquals(r.raftLog.committed, commit);
    assertEquals(nextEnts(r, s).length, commit);
  }
});

Deno.test("paper 5.3: follower rejects appends whose previous entry doesn't match", () => {
  const cases: [number, number, number, boolean, number][] = [
    [0, 0, 1, false, 0],
    [2, 2, 2, false, 0],
    [2, 1, 1, true, 2],
    [3, 1, 1, true, 2],
    [3, 3, 3, true, 2],
  ];
  for (const [term, index, windex, wreject, whint] of cases) {
    const s = newTestStorage([1, 2, 3]);
    s.append([ent(1, 1), ent(2, 2)]);
    const r = newTestRaft(1, 10, 1, s);
    r.raftLog.commitTo(1);
    r.becomeFollower(2, 2n);
    r.step(msg(MT.MsgApp, 2, 1, { term: 2, logTerm: term, index }));
    const ms = readMessages(r);
    assertEquals(
      [ms[0].type, ms[0].index, ms[0].reject, ms[0].rejectHint],
      [MT.MsgAppResp, windex, wreject, whint],
      `${term}/${index}`,
    );
  }
});

Deno.test("paper 5.3: follower truncates conflicts and appends", () => {
  const cases: [number, number, [number, number][], [number, number][], [number, number][]][] = [
    [2, 2, [[3, 3]], [[1, 1], [2, 2], [3, 3]], [[3, 3]]],
    [1, 1, [[3, 2], [4, 3]], [[1, 1], [3, 2], [4, 3]], [[3, 2], [4, 3]]],
    [0, 0, [[1, 1]], [[1, 1], [2, 2]], []],
    [0, 0, [[3, 1]], [[3, 1]], [[3, 1]]],
  ];
  for (const [index, term, ents, wents, wunstable] of cases) {
    const s = newTestStorage([1, 2, 3]);
    s.append([ent(1, 1), ent(2, 2)]);
    const r = newTestRaft(1, 10, 1, s);
    r.becomeFollower(2, 2n);
    r.step(msg(MT.MsgApp, 2, 1, { term: 2, logTerm: term, index, entries: ents.map(([t, i]) => ent(t, i)) }));
    assertEquals(r.raftLog.allEntries().map((e) => [e.term, e.index]), wents);
    assertEquals(r.raftLog.unstableEntries().map((e) => [e.term, e.index]), wunstable);
  }
});

// Figure 7: a new leader brings followers with missing, extra or conflicting entries in line.
Deno.test("paper 5.3: leader syncs follower logs (figure 7)", () => {
  const terms = (ts: number[]) => [ent(0, 0), ...ts.map((t, i) => ent(t, i + 1))];
  const leaderLog = terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
  const followers = [
    [1, 1, 1, 4, 4, 5, 5, 6, 6],
    [1, 1, 1, 4],
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    [1, 1, 1, 4, 4, 4, 4],
    [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  ];
  for (const f of followers) {
    const ls = newTestStorage([1, 2, 3]);
    ls.append(leaderLog.slice(1));
    const lead = newTestRaft(1, 10, 1, ls);
    lead.raftLog.commitTo(leaderLog.length - 1);
    lead.term = 8;
    const fs = newTestStorage([1, 2, 3]);
    fs.append(terms(f).slice(1));
    const follower = newTestRaft(2, 10, 1, fs);
    follower.term = 7;
    // Node 3 is a black hole that still votes: the election needs a second vote.
    const n = new Network([lead, follower, null]);
    const term = lead.term;
    n.send(hup(1));
    n.send(msg(MT.MsgVoteResp, 3, 1, { term: term + 1 }));
    n.send(propMsg(1, ""));
    assertEquals(
      follower.raftLog.allEntries().map((e) => [e.term, e.index]),
      lead.raftLog.allEntries().map((e) => [e.term, e.index]),
      `follower ${f}`,
    );
  }
});

Deno.test("paper 5.4.1: voter grants only to candidates at least as up to date", () => {
  const cases: [[number, number][], number, number, boolean][] = [
    [[[1, 1]], 1, 1, false],
    [[[1, 1]], 1, 2, false],
    [[[1, 1], [1, 2]], 1, 1, true],
    [[[1, 1]], 2, 1, false],
    [[[1, 1]], 2, 2, false],
    [[[1, 1], [1, 2]], 2, 1, false],
    [[[2, 1]], 1, 1, true],
    [[[2, 1]], 1, 2, true],
    [[[2, 1], [1, 2]], 1, 1, true],
  ];
  for (const [ents, logTerm, index, wreject] of cases) {
    const s = newTestStorage([1, 2]);
    s.append(ents.map(([t, i]) => ent(t, i)));
    const r = newTestRaft(1, 10, 1, s);
    r.step(msg(MT.MsgVote, 2, 1, { term: 3, logTerm, index }));
    const ms = readMessages(r);
    assertEquals(ms[0].reject, wreject, JSON.stringify([ents, logTerm, index]));
  }
});

// §5.4.2: entries of older terms are never committed by counting replicas.
Deno.test("paper 5.4.2: leader only commits entries of its current term by counting", () => {
  for (const [index, wcommit] of [[1, 0], [2, 0], [3, 3]]) {
    const s = newTestStorage([1, 2]);
    s.append([ent(1, 1), ent(2, 2)]);
    const r = newTestRaft(1, 10, 1, s);
    r.term = 2;
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    r.step(msg(MT.MsgAppResp, 2, 1, { term: r.term, index }));
    assertEquals(r.raftLog.committed, wcommit, `ack index ${index}`);
  }
});

// Figure 8: an old-term entry that the new leader replicated to a majority must not be
// committed by counting: the owner of a newer conflicting entry could still win.
Deno.test("paper 5.4.2: figure 8 scenario", () => {
  const n = new Network([undefined, undefined, undefined, undefined, undefined], { maxSizePerMsg: 0 });
  const r = (id: number) => n.raft(id);
  const campaign = (id: number) => {
    for (let i = 0; i < 3 && r(id).state !== StateType.Leader; i++) n.send(hup(id));
    assertEquals(StateType[r(id).state], "Leader", `S${id} elected`);
  };
  // (a) S1 leads term 1 and replicates index 2 to S2 only.
  campaign(1);
  for (let id = 3; id <= 5; id++) n.cut(1, id);
  n.send(propMsg(1, "t1"));
  const t2 = r(1).raftLog.lastIndex();
  assertEquals(r(2).raftLog.lastIndex(), t2);
  assert(r(1).raftLog.committed < t2, "(a) committed");
  // (b) S1 crashes; S5 is elected by S3, S4 and writes its own entry at index 2, locally only.
  n.recover();
  n.isolate(1);
  n.cut(5, 2);
  n.ignore(MT.MsgApp);
  campaign(5);
  const t5 = r(5).raftLog.termOrZero(t2);
  assert(t5 > r(1).raftLog.termOrZero(t2), "(b) S5 has a newer entry at index 2");
  // (c) S1 restarts and is elected by S2, S3, S4; it sends its old entry but holds back its
  // own-term ones, so a majority stores the old entry. It must not commit.
  n.recover();
  n.isolate(5);
  r(1).becomeFollower(r(1).term, 0n);
  n.ignore(MT.MsgApp);
  campaign(1);
  n.recover();
  n.isolate(5);
  const lead = r(1);
  n.msgHook = (m) => {
    if (m.type === MT.MsgApp) m.entries = m.entries.filter((e) => e.term !== lead.term);
    return true;
  };
  n.send(msg(MT.MsgBeat, 1, 1));
  n.send(msg(MT.MsgBeat, 1, 1));
  assertEquals(r(3).raftLog.termOrZero(t2), lead.raftLog.termOrZero(t2), "(c) S3 got the old entry");
  assertEquals(lead.prs.committed() >= t2, true, "(c) a majority stores the old entry");
  assert(lead.raftLog.committed < t2, `(c) leader committed old-term entry ${t2}`);
  // (d) S1 crashes again; S5 wins and overwrites index 2 everywhere: safe only because
  // nobody committed it.
  n.msgHook = undefined;
  n.recover();
  n.isolate(1);
  r(5).becomeFollower(r(5).term, 0n);
  campaign(5);
  n.send(propMsg(5, "after"));
  for (const id of [2, 3, 4]) assertEquals(r(id).raftLog.termOrZero(t2), t5);
});
