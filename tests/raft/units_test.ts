// Unit tests for the building blocks: storage, log, quorum, inflights, codec.

import { assert, assertEquals, assertThrows } from "./assert.ts";
import { ent } from "./network.ts";
import { MemoryStorage } from "../../raft/storage.ts";
import { RaftLog } from "../../raft/log.ts";
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from "../../raft/errors.ts";
import { JointConfig, majorityCommittedIndex, majorityVoteResult, VoteResult } from "../../raft/quorum.ts";
import { Inflights } from "../../raft/inflights.ts";
import {
  decodeConfChange,
  decodeConfChangeV2,
  encodeConfChange,
  encodeConfChangeV2,
} from "../../raft/confchange_codec.ts";
import { ConfChangeTransition, ConfChangeType } from "../../raft/types.ts";
import { entrySize } from "../../raft/util.ts";

function storageWith(offset: number, terms: number[]): MemoryStorage {
  const s = new MemoryStorage();
  if (offset > 0) {
    s.applySnapshot({
      data: new Uint8Array(0),
      metadata: {
        index: offset,
        term: terms[0],
        confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    });
  }
  s.append(terms.slice(1).map((t, i) => ent(t, offset + 1 + i)));
  return s;
}

Deno.test("MemoryStorage: term, entries, compaction errors", () => {
  const s = storageWith(3, [3, 4, 5]);
  assertThrows(() => s.term(2), ErrCompacted.message);
  assertEquals(s.term(3), 3);
  assertEquals(s.term(5), 5);
  assertThrows(() => s.term(6), ErrUnavailable.message);
  assertThrows(() => s.entries(3, 5, 1 << 30), ErrCompacted.message);
  assertEquals(s.entries(4, 6, 1 << 30).map((e) => e.index), [4, 5]);
  assertEquals(s.entries(4, 6, 0).length, 1); // always at least one
  assertEquals([s.firstIndex(), s.lastIndex()], [4, 5]);
  s.compact(4);
  assertEquals([s.firstIndex(), s.lastIndex()], [5, 5]);
  assertThrows(() => s.compact(4), ErrCompacted.message);
});

Deno.test("MemoryStorage: entries within a size are the longest prefix of [lo, hi) that fits, at least one", () => {
  const s = new MemoryStorage();
  s.append(Array.from({ length: 20 }, (_, i) => ent(1, i + 1, "x".repeat(i % 3))));
  const all = s.entries(1, 21, Infinity);
  for (const [lo, hi] of [[1, 21], [5, 9], [7, 8], [18, 21]]) {
    for (let max = 0; max <= 400; max += 7) {
      const got = s.entries(lo, hi, max).map((e) => e.index);
      let n = 1, size = entrySize(all[lo - 1]);
      while (lo + n < hi && size + entrySize(all[lo - 1 + n]) <= max) size += entrySize(all[lo - 1 + n++]);
      assertEquals(got, Array.from({ length: n }, (_, i) => lo + i), `[${lo}, ${hi}) within ${max}`);
    }
  }
});

Deno.test("MemoryStorage: append truncates conflicts, snapshots must move forward", () => {
  const s = storageWith(3, [3, 4, 5]);
  s.append([ent(6, 5), ent(6, 6)]);
  assertEquals([s.term(4), s.term(5), s.term(6)], [4, 6, 6]);
  s.append([ent(1, 2), ent(1, 3)]); // fully compacted: ignored
  assertEquals(s.lastIndex(), 6);
  assertThrows(() => s.append([ent(7, 9)]), "missing log entry");
  const snap = s.createSnapshot(5, undefined, new Uint8Array([1]));
  assertEquals([snap.metadata.index, snap.metadata.term], [5, 6]);
  assertThrows(() => s.createSnapshot(4, undefined, new Uint8Array()), ErrSnapOutOfDate.message);
});

Deno.test("RaftLog: maybeAppend, conflicts, commit, unstable handoff", () => {
  const s = storageWith(0, [0, 1, 2, 3]);
  const l = new RaftLog(s);
  assertEquals(l.lastIndex(), 3);
  assertEquals(l.maybeAppend(3, 3, 2, [ent(4, 4)]), 4);
  assertEquals(l.committed, 2);
  assertEquals(l.maybeAppend(5, 4, 5, []), -1); // gap
  assertEquals(l.maybeAppend(2, 2, 2, [ent(4, 3)]), 3); // conflicts with 3: truncates 3.. and appends
  assertEquals(l.termOrZero(3), 4);
  assertEquals(l.lastIndex(), 3);
  assertEquals(l.unstableEntries().map((e) => e.index), [3]);
  assertThrows(() => l.maybeAppend(1, 1, 4, [ent(9, 2)]), "conflicts with committed");
  assert(!l.maybeCommit(3, 3), "commit must check the entry's term");
  assert(l.maybeCommit(3, 4), "commit 3 at term 4");
  s.append(l.unstableEntries());
  l.stableTo(3, 4);
  assertEquals(l.unstableEntries().length, 0);
  assertEquals(l.nextEnts().map((e) => e.index), [1, 2, 3]);
  l.appliedTo(3);
  assert(!l.hasNextEnts(), "all applied");
  assert(l.isUpToDate(3, 4) && l.isUpToDate(1, 5) && !l.isUpToDate(9, 3), "up to date");
});

Deno.test("quorum: majority commit index and votes, joint combinations", () => {
  const acked = (m: Record<number, number>) => (id: bigint) => m[Number(id)];
  assertEquals(majorityCommittedIndex(new Set([1n, 2n, 3n]), acked({ 1: 5, 2: 3, 3: 9 })), 5);
  assertEquals(majorityCommittedIndex(new Set([1n, 2n, 3n, 4n]), acked({ 1: 5, 2: 3, 3: 9, 4: 1 })), 3);
  assertEquals(majorityCommittedIndex(new Set([1n, 2n, 3n]), acked({ 1: 5 })), 0);
  const votes = new Map([[1n, true], [2n, false]]);
  assertEquals(majorityVoteResult(new Set([1n, 2n, 3n]), votes), VoteResult.Pending);
  votes.set(3n, true);
  assertEquals(majorityVoteResult(new Set([1n, 2n, 3n]), votes), VoteResult.Won);
  const j = new JointConfig(new Set([1n, 2n, 3n]), new Set([3n, 4n, 5n]));
  assertEquals(j.committedIndex(acked({ 1: 9, 2: 9, 3: 5, 4: 4, 5: 1 })), 4);
  assertEquals(j.voteResult(new Map([[1n, true], [2n, true], [4n, false], [5n, false]])), VoteResult.Lost);
  assertEquals(new JointConfig(new Set([1n])).committedIndex(acked({ 1: 7 })), 7);
});

Deno.test("inflights: ring buffer add/free/full", () => {
  const f = new Inflights(3);
  f.add(1);
  f.add(2);
  f.add(5);
  assert(f.full());
  assertThrows(() => f.add(6), "Full");
  f.freeLE(2);
  assertEquals(f.len(), 1);
  f.add(6);
  f.add(7); // wraps around
  f.freeFirstOne();
  assertEquals(f.len(), 2);
  f.freeLE(100);
  assertEquals(f.len(), 0);
});

Deno.test("confchange codec: raftpb-compatible round trips", () => {
  const cc = {
    id: 0x694d_0192_3456_7801n,
    type: ConfChangeType.AddLearnerNode,
    nodeId: 0x8e9e05c52164694dn,
    context: new Uint8Array([7]),
  };
  const b = encodeConfChange(cc);
  assertEquals(decodeConfChange(b), cc);
  // gogoproto: field 1 varint, field 2 varint, field 3 varint, field 4 bytes.
  assertEquals(Array.from(encodeConfChange({ id: 1n, type: 0, nodeId: 2n })), [8, 1, 16, 0, 24, 2]);
  const v2 = {
    transition: ConfChangeTransition.JointExplicit,
    changes: [{ type: ConfChangeType.AddNode, nodeId: 4n }, { type: ConfChangeType.RemoveNode, nodeId: 300n }],
    context: new Uint8Array([1, 2]),
  };
  assertEquals(decodeConfChangeV2(encodeConfChangeV2(v2)), v2);
  assertEquals(decodeConfChangeV2(encodeConfChangeV2({ transition: 0, changes: [] })), { transition: 0, changes: [] });
});
