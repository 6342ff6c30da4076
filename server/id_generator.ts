// Request ids unique across members and restarts (etcd's pkg/idutil): the low 16 bits
// of the member id, then a millisecond timestamp and a counter in the remaining bits.

const suffixBits = 40n;
const suffixMask = (1n << suffixBits) - 1n;

export class IdGenerator {
  private prefix: bigint;
  private suffix: bigint;

  constructor(memberId: number, nowMs: number) {
    this.prefix = (BigInt(memberId) & 0xffffn) << (64n - 16n);
    // start from the time so ids after a restart do not collide with those before it
    this.suffix = (BigInt(nowMs) << 8n) & suffixMask;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & suffixMask;
    return this.prefix | this.suffix;
  }
}
