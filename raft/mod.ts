// Public entry point of the raft library.

export * from "./types.ts";
export * from "./errors.ts";
export type { Config } from "./config.ts";
export type { Logger } from "./logger.ts";
export { MemoryStorage, type Storage } from "./storage.ts";
export { type Peer, RawNode, SnapshotStatus } from "./rawnode.ts";
export { ReadOnlyOption } from "./read_only.ts";
export type { ProgressStatus, Status } from "./status.ts";
export { ProgressState } from "./progress.ts";
export { decodeConfChange, decodeConfChangeV2, encodeConfChange, encodeConfChangeV2 } from "./confchange_codec.ts";
export { asV2 } from "./confchange.ts";
export { isEmptySnap, isLocalMsg, isResponseMsg } from "./util.ts";
