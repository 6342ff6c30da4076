// Proposers park here until the applier reaches their entry (etcd's pkg/wait): one
// promise per request id, resolved exactly once by trigger().

export class Wait<T> {
  private readonly pending = new Map<bigint, { resolve: (v: T) => void; reject: (e: unknown) => void }>();

  register(id: bigint): Promise<T> {
    if (this.pending.has(id)) throw new Error(`wait: duplicate id ${id}`);
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  isRegistered(id: bigint): boolean {
    return this.pending.has(id);
  }

  trigger(id: bigint, value: T): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    w.resolve(value);
  }

  fail(id: bigint, err: unknown): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    w.reject(err);
  }

  failAll(err: unknown): void {
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
  }

  get size(): number {
    return this.pending.size;
  }
}
