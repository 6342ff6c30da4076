// The FIFO apply scheduler (etcd's pkg/schedule.FIFO): jobs run one at a time in the
// order they were scheduled, so committed entries are applied strictly in log order
// while the raft loop goes on persisting the next batch.

export type Job = () => void | Promise<void>;

/**
 * After this long of back-to-back jobs the scheduler lets the event loop run (timers, sockets) before the next: jobs
 * that follow each other as promise continuations would otherwise keep the raft loop and the peers' messages waiting
 * until the queue is empty (a restarted member re-applying 85k entries its backend holds answered its leader ~80 ms
 * late, and so got the entries it missed that much later).
 */
const SLICE_MS = 10;

export class FifoScheduler {
  private readonly queue: Job[] = [];
  private head = 0;
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private failure: unknown = undefined;

  constructor(private readonly maxPending: number, private readonly onError: (err: unknown) => void) {}

  /** Schedules a job; throws when the bound is reached so a stuck applier is loud, not a memory leak. */
  schedule(job: Job): void {
    if (this.pending >= this.maxPending) throw new Error(`scheduler: more than ${this.maxPending} pending jobs`);
    this.queue.push(job);
    if (!this.running) void this.run();
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Resolves once every job scheduled so far has finished. */
  idle(): Promise<void> {
    if (!this.running && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    this.running = true;
    let slice = performance.now();
    while (this.head < this.queue.length) {
      if (performance.now() - slice > SLICE_MS) {
        await new Promise((r) => setTimeout(r, 0));
        slice = performance.now();
      }
      const job = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as Job;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (this.failure !== undefined) continue;
      try {
        const r = job();
        if (r instanceof Promise) await r;
      } catch (err) {
        // An apply failure leaves the state machine unknown: stop applying, report once.
        this.failure = err;
        this.onError(err);
      }
    }
    this.queue.length = 0;
    this.head = 0;
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
