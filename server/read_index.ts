// The linearizable read loop (etcd's linearizableReadLoop): one raft ReadIndex request in flight at a time, and the
// reads that arrive meanwhile wait to share the next one; raft answers with the commit index at which the leader
// still held its lease, and the reads proceed once the applied index reaches it. A request unanswered after
// RETRY_MS (a lost message, a leader change) is asked again under a new context (etcd 3.5's readIndexRetryTime).
// A request's context is an ID unique across members (etcd's: from the request ID generator): the leader keeps
// pending reads by context, and two followers' equal contexts would leave one of them unanswered.

const RETRY_MS = 500;

interface Reader {
  resolve: () => void;
  reject: (err: unknown) => void;
  deadline: number;
}

interface Batch {
  readers: Reader[];
  /** Commit index raft answered with; Infinity until the ReadState arrives. */
  index: number;
  sentAt: number;
}

export class ReadIndexLoop {
  private next: Reader[] = [];
  private scheduled = false;
  /** Batches by their request context, in the order they were sent. */
  private readonly batches = new Map<bigint, Batch>();
  /** The batch whose ReadState is awaited, if any. */
  private inFlight: bigint | undefined;

  /**
   * `request` asks raft for a read index tagged with ctx; `applied` is the applied index now; `nextId` gives IDs
   * unique across members.
   */
  constructor(
    private readonly request: (ctx: Uint8Array) => void,
    private readonly applied: () => number,
    private readonly nextId: () => bigint,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Resolves when a read started now may be served from the applied state. */
  wait(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.next.push({ resolve, reject, deadline });
      this.schedule();
    });
  }

  /** Every read that arrives in this turn of the event loop rides on one request, once none is in flight. */
  private schedule(): void {
    if (this.scheduled || this.inFlight !== undefined || this.next.length === 0) return;
    this.scheduled = true;
    queueMicrotask(() => this.send());
  }

  private send(): void {
    this.scheduled = false;
    if (this.next.length === 0 || this.inFlight !== undefined) return;
    this.ask(this.next);
    this.next = [];
  }

  private ask(readers: Reader[]): void {
    const id = this.nextId();
    this.batches.set(id, { readers, index: Infinity, sentAt: this.now() });
    this.inFlight = id;
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, id);
    this.request(ctx);
  }

  onReadStates(states: { index: number; requestCtx: Uint8Array }[]): void {
    for (const s of states) {
      if (s.requestCtx.length !== 8) continue;
      const id = new DataView(s.requestCtx.buffer, s.requestCtx.byteOffset, 8).getBigUint64(0);
      const b = this.batches.get(id);
      if (b === undefined) continue;
      b.index = s.index;
      if (this.inFlight === id) this.inFlight = undefined;
    }
    this.onApplied();
    this.schedule();
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

  /**
   * Called periodically: fails reads past their deadline (a member without a leader never gets an answer), and asks
   * again for a batch unanswered for RETRY_MS.
   */
  expire(now: number, err: unknown): void {
    for (const [id, b] of this.batches) {
      if (!b.readers.some((r) => r.deadline <= now)) continue;
      // a batch shares one answer: if its oldest reader timed out, the rest would soon too
      this.batches.delete(id);
      if (this.inFlight === id) this.inFlight = undefined;
      for (const r of b.readers) r.reject(err);
    }
    const stuck = this.inFlight === undefined ? undefined : this.batches.get(this.inFlight);
    if (stuck !== undefined && now - stuck.sentAt >= RETRY_MS) this.askAgain();
    this.schedule();
  }

  /**
   * A leader was elected: the request in flight went to the one before, which may have died with it, so the new one
   * is asked now rather than up to RETRY_MS later (reads on a follower go on as soon as a leader's kill is over).
   */
  leaderElected(): void {
    if (this.inFlight !== undefined) this.askAgain();
  }

  /** Asks again, under a new context, for the batch in flight: the old one's answer, if it comes, is ignored. */
  private askAgain(): void {
    const id = this.inFlight!;
    const stuck = this.batches.get(id)!;
    this.batches.delete(id);
    this.ask(stuck.readers);
  }

  failAll(err: unknown): void {
    for (const b of this.batches.values()) for (const r of b.readers) r.reject(err);
    for (const r of this.next) r.reject(err);
    this.batches.clear();
    this.next = [];
    this.inFlight = undefined;
  }
}
