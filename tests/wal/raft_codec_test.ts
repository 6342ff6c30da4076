import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  type ConfChange,
  type ConfChangeV2,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type Snapshot,
} from "../../raft/types.ts";
import { ProtoError } from "../../wal/proto_wire.ts";
import {
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  type EntryFields,
  entryFields,
} from "../../wal/raft_codec.ts";
import {
  decodeConfChange,
  decodeConfChangeV2,
  encodeConfChange,
  encodeConfChangeV2,
} from "../../raft/confchange_codec.ts";

const bytes = (...b: number[]) => new Uint8Array(b);
const BIG = Number.MAX_SAFE_INTEGER;
/** A member ID past 2^63, as etcd's are (all 64 bits). */
const BIG_ID = 0x8e9e05c52164694dn;

const snap: Snapshot = {
  data: bytes(9, 8, 7),
  metadata: {
    index: 2 ** 40 + 5,
    term: 300,
    confState: {
      voters: [1n, 2n, BIG_ID],
      learners: [4n],
      votersOutgoing: [1n, 5n],
      learnersNext: [6n],
      autoLeave: true,
    },
  },
};

Deno.test("codec: Entry round-trips, including 2^53-1 and empty data", () => {
  const cases: Entry[] = [
    { term: 0, index: 0, type: EntryType.Normal, data: bytes() },
    { term: 1, index: 2, type: EntryType.ConfChange, data: bytes(1, 2, 3) },
    { term: BIG, index: BIG, type: EntryType.ConfChangeV2, data: new Uint8Array(300).fill(7) },
    { term: 2 ** 31, index: 2 ** 32 + 1, type: EntryType.Normal, data: bytes(0) },
  ];
  const f: EntryFields = { term: 9, index: 9, type: 9, dataStart: 9, dataEnd: 9 };
  for (const e of cases) {
    assertEquals(decodeEntry(encodeEntry(e)), e);
    // the fields alone, the data as a range of the bytes read (placed at an offset in a larger buffer)
    const enc = encodeEntry(e), buf = new Uint8Array(enc.length + 7);
    buf.set(enc, 5);
    entryFields(buf, 5, 5 + enc.length, f);
    assertEquals([f.term, f.index, f.type, buf.subarray(f.dataStart, f.dataEnd)], [e.term, e.index, e.type, e.data]);
  }
  // gogo writes zero-valued fields too; an empty data field is an empty range
  entryFields(bytes(0x08, 0, 0x10, 0, 0x18, 0x96, 0x01, 0x22, 0), 0, 9, f);
  assertEquals({ ...f }, { term: 0, index: 150, type: 0, dataStart: 9, dataEnd: 9 });
});

Deno.test("codec: reads etcd's gogo encoding, which writes zero-valued fields", () => {
  // raftpb.Entry{Term: 1, Index: 2, Type: EntryNormal, Data: "x"} as etcd marshals it.
  assertEquals(decodeEntry(bytes(0x08, 0x00, 0x10, 0x01, 0x18, 0x02, 0x22, 0x01, 0x78)), {
    term: 1,
    index: 2,
    type: EntryType.Normal,
    data: bytes(0x78),
  });
  // Our encoding of the same entry drops the zero type and is otherwise identical.
  assertEquals(
    encodeEntry({ term: 1, index: 2, type: EntryType.Normal, data: bytes(0x78) }),
    bytes(0x10, 0x01, 0x18, 0x02, 0x22, 0x01, 0x78),
  );
  // ConfState voters packed (proto3 style) must decode like the unpacked form.
  assertEquals(decodeConfState(bytes(0x0a, 0x03, 0x01, 0x02, 0x03)).voters, [1n, 2n, 3n]);
});

Deno.test("codec: HardState, ConfState and Snapshot round-trip", () => {
  const hs = { term: 7, vote: 3n, commit: 2 ** 45 };
  assertEquals(decodeHardState(encodeHardState(hs)), hs);
  assertEquals(decodeHardState(encodeHardState({ term: 0, vote: 0n, commit: 0 })), { term: 0, vote: 0n, commit: 0 });
  assertEquals(decodeConfState(encodeConfState(snap.metadata.confState)), snap.metadata.confState);
  assertEquals(decodeSnapshot(encodeSnapshot(snap)), snap);
});

Deno.test("codec: Message round-trips with every field set, and with none", () => {
  const full: Message = {
    type: MessageType.MsgPreVoteResp,
    to: BIG_ID,
    from: 2n,
    term: 3,
    logTerm: 4,
    index: 5,
    entries: [
      { term: 4, index: 6, type: EntryType.Normal, data: bytes(1) },
      { term: 4, index: 7, type: EntryType.ConfChange, data: bytes() },
    ],
    commit: 8,
    snapshot: snap,
    reject: true,
    rejectHint: 9,
    context: bytes(5, 5),
  };
  assertEquals(decodeMessage(encodeMessage(full)), full);
  const bare: Message = {
    type: MessageType.MsgHup,
    to: 0n,
    from: 0n,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
  assertEquals(encodeMessage(bare).length, 0);
  assertEquals(decodeMessage(encodeMessage(bare)), bare);
});

Deno.test("codec: ConfChange and ConfChangeV2 round-trip", () => {
  const cc: ConfChange = { id: 0x694d_0192_3456_7801n, type: 3, nodeId: BIG_ID, context: bytes(1) };
  assertEquals(decodeConfChange(encodeConfChange(cc)), cc);
  const v2: ConfChangeV2 = {
    transition: 2,
    changes: [{ type: 0, nodeId: 1n }, { type: 1, nodeId: 2n }],
    context: bytes(2),
  };
  assertEquals(decodeConfChangeV2(encodeConfChangeV2(v2)), v2);
});

Deno.test("codec: decoded bytes are zero-copy views into the input", () => {
  const buf = encodeEntry({ term: 1, index: 1, type: EntryType.Normal, data: bytes(1, 2, 3) });
  const e = decodeEntry(buf);
  assertEquals(e.data.buffer, buf.buffer);
});

Deno.test("codec: unknown fields are skipped, malformed input and >2^53 values rejected", () => {
  // field 15 (varint) and field 14 (bytes) are unknown to HardState.
  assertEquals(decodeHardState(bytes(0x78, 0x05, 0x72, 0x01, 0xff, 0x08, 0x02)), { term: 2, vote: 0n, commit: 0 });
  assertThrows(() => decodeEntry(bytes(0x22, 0x05, 0x01)), ProtoError); // data runs past the end
  assertThrows(() => decodeEntry(bytes(0x10, 0x80)), ProtoError); // truncated varint
  // 2^53 as a varint: 0x80 x7 then 0x10.
  assertThrows(() => decodeHardState(bytes(0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10)), ProtoError);
  assertThrows(() => encodeHardState({ term: 2 ** 53, vote: 0n, commit: 0 }), ProtoError);
  assertThrows(() => encodeHardState({ term: -1, vote: 0n, commit: 0 }), ProtoError);
});
