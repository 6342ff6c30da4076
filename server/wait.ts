// Proposers park here until the applier reaches their entry (etcd's pkg/wait): one
// promise per request id, settled exactly once — by trigger(), by fail(), or by
// expire() once its deadline passed. One sweep serves every deadline, so a request
// costs no timer of its own. A waiter may carry a value for whoever settles it (the
// proposer's own request, so applying it needs no decode).

interface Waiter<T, C> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  deadline: number;
  context: C;
}

export class Wait<T, C = undefined> {
  // Map keeps insertion order; with one timeout for all, that is deadline order too.
  private readonly pending = new Map<number, Waiter<T, C>>();

  /** `settled` runs whenever a waiter is settled, `failed` unless by trigger(). */
  constructor(private readonly settled: (failed: boolean) => void = () => {}) {}

  register(id: number, deadline: number, context: C): Promise<T> {
    if (this.pending.has(id)) throw new Error(`wait: duplicate id ${id}`);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.pending.set(id, { resolve, reject, deadline, context });
    return promise;
  }

  /** The context of a pending waiter. */
  context(id: number): C | undefined {
    return this.pending.get(id)?.context;
  }

  trigger(id: number, value: T): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    this.settled(false);
    w.resolve(value);
  }

  fail(id: number, err: unknown): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    this.settled(true);
    w.reject(err);
  }

  /** Rejects every waiter whose deadline is at or before `now`. */
  expire(now: number, err: unknown): void {
    for (const [id, w] of this.pending) {
      if (w.deadline > now) break;
      this.pending.delete(id);
      this.settled(true);
      w.reject(err);
    }
  }

  failAll(err: unknown): void {
    for (const w of this.pending.values()) {
      this.settled(true);
      w.reject(err);
    }
    this.pending.clear();
  }

  /** The ids waiting now. */
  ids(): number[] {
    return [...this.pending.keys()];
  }

  get size(): number {
    return this.pending.size;
  }
}
