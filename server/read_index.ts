// The linearizable read loop (etcd's linearizableReadLoop): reads that arrive together
// share one raft ReadIndex request; raft answers with the commit index at which the
// leader still held its lease, and the reads proceed once the applied index reaches it.
// A request's context is an ID unique across members (etcd's: from the request ID
// generator): the leader keeps pending reads by context, and two followers' equal
// contexts would leave one of them unanswered.

interface Reader {
  resolve: () => void;
  reject: (err: unknown) => void;
  deadline: number;
}

interface Batch {
  readers: Reader[];
  /** Commit index raft answered with; Infinity until the ReadState arrives. */
  index: number;
}

export class ReadIndexLoop {
  private next: Reader[] = [];
  private scheduled = false;
  /** Batches by their request context, in the order they were sent. */
  private readonly batches = new Map<bigint, Batch>();

  /**
   * `request` asks raft for a read index tagged with ctx; `applied` is the applied index now; `nextId` gives IDs
   * unique across members.
   */
  constructor(
    private readonly request: (ctx: Uint8Array) => void,
    private readonly applied: () => number,
    private readonly nextId: () => bigint,
  ) {}

  /** Resolves when a read started now may be served from the applied state. */
  wait(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.next.push({ resolve, reject, deadline });
      if (this.scheduled) return;
      this.scheduled = true;
      // every read that arrives in this turn of the event loop rides on one request
      queueMicrotask(() => this.send());
    });
  }

  private send(): void {
    this.scheduled = false;
    if (this.next.length === 0) return;
    const id = this.nextId();
    this.batches.set(id, { readers: this.next, index: Infinity });
    this.next = [];
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, id);
    this.request(ctx);
  }

  onReadStates(states: { index: number; requestCtx: Uint8Array }[]): void {
    for (const s of states) {
      if (s.requestCtx.length !== 8) continue;
      const id = new DataView(s.requestCtx.buffer, s.requestCtx.byteOffset, 8).getBigUint64(0);
      const b = this.batches.get(id);
      if (b !== undefined) b.index = s.index;
    }
    this.onApplied();
  }

  /** Call whenever the applied index moves. */
  onApplied(): void {
    if (this.batches.size === 0) return;
    const applied = this.applied();
    for (const [id, b] of this.batches) {
      if (b.index > applied) continue;
      this.batches.delete(id);
      for (const r of b.readers) r.resolve();
    }
  }

  /** Fails reads past their deadline (a lost leader never answers their ReadIndex). */
  expire(now: number, err: unknown): void {
    for (const [id, b] of this.batches) {
      if (!b.readers.some((r) => r.deadline <= now)) continue;
      // a batch shares one answer: if its oldest reader timed out, the rest would soon too
      this.batches.delete(id);
      for (const r of b.readers) r.reject(err);
    }
  }

  failAll(err: unknown): void {
    for (const b of this.batches.values()) for (const r of b.readers) r.reject(err);
    for (const r of this.next) r.reject(err);
    this.batches.clear();
    this.next = [];
  }
}
