// Errors surfaced by the raft library. The texts match etcd's so operators and
// log scrapers recognise them.

/** Base class so callers can tell raft errors from everything else. */
export class RaftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaftError";
  }
}

/** A proposal was ignored (no leader, transfer in progress, size limit...). */
export const ErrProposalDropped = new RaftError("raft proposal dropped");
/** The requested index is older than the storage's first index. */
export const ErrCompacted = new RaftError("requested index is unavailable due to compaction");
/** A snapshot older than the storage's current one was offered. */
export const ErrSnapOutOfDate = new RaftError("requested index is older than the existing snapshot");
/** The requested entry is beyond the storage's last index. */
export const ErrUnavailable = new RaftError("requested entry at index is unavailable");
/** The storage cannot produce a snapshot right now; raft retries later. */
export const ErrSnapshotTemporarilyUnavailable = new RaftError("snapshot is temporarily unavailable");
/** Local message types (MsgHup, MsgBeat...) must not arrive over the network. */
export const ErrStepLocalMsg = new RaftError("raft: cannot step raft local message");
/** A response came from a node that is not in the configuration. */
export const ErrStepPeerNotFound = new RaftError("raft: cannot step as peer not found");
