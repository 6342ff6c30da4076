// A ring buffer of the last indexes of MsgApps sent to a follower but not yet
// acknowledged; when full, the leader stops sending (flow control).

export class Inflights {
  private start = 0;
  private count = 0;
  private readonly size: number;
  private buffer: number[] = [];

  constructor(size: number) {
    this.size = size;
  }

  /** Records a MsgApp whose last entry is `inflight`; indexes must be added in increasing order. */
  add(inflight: number): void {
    if (this.full()) throw new Error("cannot add into a Full inflights");
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    // Grow lazily: most followers never fill the window.
    if (next >= this.buffer.length) this.buffer.push(inflight);
    else this.buffer[next] = inflight;
    this.count++;
  }

  /** Frees every inflight up to and including `to`. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]) break;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.buffer[this.start]);
  }

  full(): boolean {
    return this.count === this.size;
  }

  len(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}
