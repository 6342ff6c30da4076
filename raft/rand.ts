// Seeded PRNG (mulberry32) so election timeouts are random yet replayable.

export class Rand {
  private state: number;

  constructor(seed: number) {
    // Fold high bits in so seeds above 2^32 still differ.
    this.state = (seed ^ Math.floor(seed / 0x100000000)) >>> 0;
  }

  /** A uniform integer in [0, n). */
  intn(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniform number in [0, 1). */
  float(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
