// The raft data types shared by raft/, wal/ and server/. They mirror etcd's raftpb
// messages. Node IDs are etcd's, all 64 bits (bigint: a member ID is a hash, so it uses
// them all); terms and indexes are plain numbers (safe up to 2^53, far past any log a
// member will ever write), so the log's hot path never touches bigint.

/** A node's (member's) ID; NONE (0n) is no node. */
export type NodeId = bigint;

/** Orders node IDs as etcd's sorts of uint64 IDs do. */
export function compareIds(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
  ConfChangeV2 = 2,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export enum MessageType {
  MsgHup = 0,
  MsgBeat = 1,
  MsgProp = 2,
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  MsgUnreachable = 10,
  MsgSnapStatus = 11,
  MsgCheckQuorum = 12,
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgPreVote = 17,
  MsgPreVoteResp = 18,
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context?: Uint8Array;
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

export enum ConfChangeTransition {
  Auto = 0,
  JointImplicit = 1,
  JointExplicit = 2,
}

/** A single-step membership change (etcd's ConfChange). */
export interface ConfChange {
  /** The proposer's request ID (etcd's uint64). */
  id: bigint;
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

/** A joint-consensus membership change; an empty `changes` leaves a joint config. */
export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  context?: Uint8Array;
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/** The answer to a readIndex request: reads at `index` are linearizable once it is applied. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/**
 * What the application must do next. Persist `hardState`, `entries` and `snapshot`
 * (fsync) before sending `messages`, except that a leader may send to followers
 * while it writes its own disk; apply `committedEntries` in order; then call advance().
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}

export const NONE: NodeId = 0n;

export function emptyHardState(): HardState {
  return { term: 0, vote: NONE, commit: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}
