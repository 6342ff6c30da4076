// Raft messages for the peer transport tests.
import type { Entry, Message } from "../../raft/types.ts";
import { MessageType } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";

export const ent = (term: number, index: number): Entry => ({ term, index, type: 0, data: Uint8Array.of(index, 7) });

/** A MsgApp from 1 to 2. */
export const app = (term: number, index: number, logTerm: number, entries: Entry[], commit: number): Message => ({
  ...newMessage(MessageType.MsgApp, 2n, 1n),
  term,
  index,
  logTerm,
  entries,
  commit,
});
