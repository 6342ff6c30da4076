// Proposers park here until the applier reaches their entry (etcd's pkg/wait): one
// promise per request id, settled exactly once — by trigger(), by fail(), or by
// expire() once its deadline passed. One sweep serves every deadline, so a request
// costs no timer of its own.

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  deadline: number;
}

export class Wait<T> {
  // Map keeps insertion order; with one timeout for all, that is deadline order too.
  private readonly pending = new Map<number, Waiter<T>>();

  register(id: number, deadline: number): Promise<T> {
    if (this.pending.has(id)) throw new Error(`wait: duplicate id ${id}`);
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve, reject, deadline }));
  }

  trigger(id: number, value: T): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    w.resolve(value);
  }

  fail(id: number, err: unknown): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    w.reject(err);
  }

  /** Rejects every waiter whose deadline is at or before `now`. */
  expire(now: number, err: unknown): void {
    for (const [id, w] of this.pending) {
      if (w.deadline > now) break;
      this.pending.delete(id);
      w.reject(err);
    }
  }

  failAll(err: unknown): void {
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
  }

  get size(): number {
    return this.pending.size;
  }
}
