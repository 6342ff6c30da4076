// Parameters of a raft node.

import type { Storage } from "./storage.ts";
import type { NodeId } from "./types.ts";
import type { Logger } from "./logger.ts";
import { ReadOnlyOption } from "./read_only.ts";
import { NO_LIMIT } from "./log.ts";

export interface Config {
  /** This node's id; must not be 0 (NONE). */
  id: NodeId;
  /** Ticks a follower waits without hearing from a leader before campaigning; should be > heartbeatTick. */
  electionTick: number;
  /** Ticks between leader heartbeats. */
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index, when restarting; entries up to it are not handed out again. */
  applied?: number;
  /** Max bytes of entries per MsgApp (default: unlimited). 0 means one entry per message. */
  maxSizePerMsg?: number;
  /** Max bytes of committed entries per Ready (default: maxSizePerMsg). */
  maxCommittedSizePerReady?: number;
  /** Max bytes of uncommitted entry payloads on a leader before it drops proposals (default: unlimited). */
  maxUncommittedEntriesSize?: number;
  /** Max unacknowledged MsgApps per follower in replicate state (default 256). */
  maxInflightMsgs?: number;
  /** Leader steps down if it hasn't heard from a quorum within an election timeout. */
  checkQuorum?: boolean;
  /** Run a pre-election first so a partitioned node can't disrupt the cluster by bumping terms. */
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Seed for the randomized election timeout (default: derived from id). */
  seed?: number;
  logger?: Logger;
}

/** Config with defaults filled in, as the raft state machine consumes it. */
export interface ResolvedConfig extends Required<Omit<Config, "logger" | "seed">> {
  seed: number;
  logger: Logger | undefined;
}

export function resolveConfig(c: Config): ResolvedConfig {
  if (c.id === 0n) throw new Error("cannot use none as id");
  if (c.heartbeatTick <= 0) throw new Error("heartbeat tick must be greater than 0");
  if (c.electionTick <= c.heartbeatTick) throw new Error("election tick must be greater than heartbeat tick");
  const maxInflightMsgs = c.maxInflightMsgs ?? 256;
  if (maxInflightMsgs <= 0) throw new Error("max inflight messages must be greater than 0");
  const readOnlyOption = c.readOnlyOption ?? ReadOnlyOption.Safe;
  if (readOnlyOption === ReadOnlyOption.LeaseBased && !c.checkQuorum) {
    throw new Error("CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased");
  }
  const maxSizePerMsg = c.maxSizePerMsg ?? NO_LIMIT;
  return {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    storage: c.storage,
    applied: c.applied ?? 0,
    maxSizePerMsg,
    maxCommittedSizePerReady: c.maxCommittedSizePerReady || maxSizePerMsg,
    maxUncommittedEntriesSize: c.maxUncommittedEntriesSize || NO_LIMIT,
    maxInflightMsgs,
    checkQuorum: c.checkQuorum ?? false,
    preVote: c.preVote ?? false,
    readOnlyOption,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    // a seed from the ID's low bits: members' timeouts differ, and a run replays
    seed: c.seed ?? Number(BigInt.asUintN(31, c.id)),
    logger: c.logger,
  };
}
