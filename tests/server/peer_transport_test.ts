// What the peer sender folds together before posting: only messages that say the same to raft.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type Message, MessageType } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";
import { app, ent } from "./raft_messages.ts";
import { coalesce } from "../../server/peer/transport.ts";

Deno.test("peer sender: continuing appends of one term become one MsgApp; anything else stays as it is", () => {
  const q = [
    app(3, 10, 3, [ent(3, 11), ent(3, 12)], 10),
    app(3, 12, 3, [ent(3, 13)], 12),
    app(3, 13, 3, [], 13), // a commit-only append continues too
    app(3, 20, 3, [ent(3, 21)], 13), // a gap: a probe after a rejection
    app(4, 21, 3, [ent(4, 22)], 13), // another term
  ];
  const merged = coalesce(q);
  assertEquals([merged.index, merged.logTerm, merged.entries.map((e) => e.index), merged.commit], [
    10,
    3,
    [11, 12, 13],
    13,
  ]);
  assertEquals(coalesce(q).index, 20);
  assertEquals(coalesce(q).term, 4);
  assertEquals(q.length, 0);
});

Deno.test("peer sender: a follower's proposals go as one MsgProp; acknowledgements as the latest", () => {
  const prop = (i: number): Message => ({ ...newMessage(MessageType.MsgProp, 1n, 2n), entries: [ent(0, i)] });
  const ack = (index: number, reject = false): Message => ({
    ...newMessage(MessageType.MsgAppResp, 1n, 2n),
    term: 5,
    index,
    reject,
  });
  const q = [prop(1), prop(2), prop(3), ack(10), ack(11), ack(12), ack(9, true), ack(13)];
  assertEquals(coalesce(q).entries.map((e) => e.index), [1, 2, 3]);
  assertEquals(coalesce(q).index, 12, "the highest acknowledged index");
  assertEquals([coalesce(q).reject, coalesce(q).index], [true, 13], "a rejection is never folded away");
  assertEquals(q.length, 0);
});
