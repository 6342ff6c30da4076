// Small helpers over the shared raft types.

import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type Snapshot,
} from "./types.ts";

/** Fixed per-entry overhead counted by size limits, roughly a protobuf header. */
const ENTRY_OVERHEAD = 16;

export function entrySize(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD;
}

/** Payload only: what counts against maxUncommittedEntriesSize (empty entries are free). */
export function payloadSize(e: Entry): number {
  return e.data.length;
}

/** Cuts ents to a prefix whose size is within maxSize, always keeping at least one entry. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  const end = limitedEnd(ents, 0, ents.length, maxSize);
  return end === ents.length ? ents : ents.slice(0, end);
}

/**
 * Where a run of ents[from, to) within maxSize ends (at least one entry, when there is one): what a slice of a long
 * log is cut to before it is copied (a restart hands out ~100k committed entries 1 MB at a time: slicing all that is
 * left each time, then cutting, took ~50 ms).
 */
export function limitedEnd(ents: Entry[], from: number, to: number, maxSize: number): number {
  // no limit (NO_LIMIT or Infinity)
  if (to <= from || maxSize >= Number.MAX_SAFE_INTEGER) return to;
  let size = entrySize(ents[from]);
  let end = from + 1;
  for (; end < to; end++) {
    size += entrySize(ents[end]);
    if (size > maxSize) break;
  }
  return end;
}

/** Whether e carries a membership change (ConfChange or ConfChangeV2). */
export function isConfChange(e: Entry): boolean {
  return e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2;
}

export function isLocalMsg(t: MessageType): boolean {
  return t === MessageType.MsgHup || t === MessageType.MsgBeat || t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus || t === MessageType.MsgCheckQuorum;
}

export function isResponseMsg(t: MessageType): boolean {
  return t === MessageType.MsgAppResp || t === MessageType.MsgVoteResp || t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable || t === MessageType.MsgPreVoteResp;
}

export function voteRespMsgType(t: MessageType): MessageType {
  if (t === MessageType.MsgVote) return MessageType.MsgVoteResp;
  if (t === MessageType.MsgPreVote) return MessageType.MsgPreVoteResp;
  throw new Error(`not a vote message: ${MessageType[t]}`);
}

export function isEmptySnap(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

export function emptySnapshot(): Snapshot {
  return {
    data: new Uint8Array(0),
    metadata: {
      index: 0,
      term: 0,
      confState: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
  };
}

export function isHardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Persisting is synchronous-critical only when term, vote or the log changed (commit can be lost). */
export function mustSync(st: HardState, prev: HardState, entsNum: number): boolean {
  return entsNum !== 0 || st.vote !== prev.vote || st.term !== prev.term;
}

/** A message with every field at its zero value, to be filled by the caller. */
export function newMessage(type: MessageType, to: NodeId, from: NodeId): Message {
  return {
    type,
    to,
    from,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

function sameSet(a: NodeId[], b: NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  for (const x of b) if (!s.has(x)) return false;
  return true;
}

/** ConfStates are equal when they name the same members, in any order. */
export function confStatesEqual(a: ConfState, b: ConfState): boolean {
  return sameSet(a.voters, b.voters) && sameSet(a.learners, b.learners) &&
    sameSet(a.votersOutgoing, b.votersOutgoing) && sameSet(a.learnersNext, b.learnersNext) &&
    a.autoLeave === b.autoLeave;
}
