// Pending linearizable read requests on the leader (ReadOnlySafe): each waits
// until a quorum acknowledges a heartbeat carrying its context.

import type { Message, NodeId } from "./types.ts";

export enum ReadOnlyOption {
  /** Confirm leadership with a heartbeat round per read batch. */
  Safe = 0,
  /** Trust the leader lease (needs CheckQuorum); unsafe under unbounded clock drift. */
  LeaseBased = 1,
}

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<NodeId, boolean>;
}

/** Request contexts are arbitrary bytes; a latin1 string makes them usable as map keys. */
export function ctxKey(ctx: Uint8Array | undefined): string {
  if (!ctx || ctx.length === 0) return "";
  let s = "";
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]);
  return s;
}

export class ReadOnly {
  readonly option: ReadOnlyOption;
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(option: ReadOnlyOption) {
    this.option = option;
  }

  /** Queues a read at the current commit index; a duplicate context is ignored. */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.entries[0].data);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Map() });
    this.queue.push(key);
  }

  /** Records a heartbeat ack for the read with this context; returns the acks so far. */
  recvAck(id: NodeId, context: Uint8Array | undefined): Map<NodeId, boolean> | undefined {
    const rs = this.pending.get(ctxKey(context));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /** Releases the read with this context and every read queued before it. */
  advance(context: Uint8Array | undefined): ReadIndexStatus[] {
    const key = ctxKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      out.push(this.pending.get(k)!);
      this.pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending read, carried by heartbeats; undefined if none. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1])!.req.entries[0].data;
  }
}
