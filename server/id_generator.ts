// Request ids unique across members and restarts (etcd's pkg/idutil): the low 16 bits of
// the member id, then a counter seeded from the clock. 16 + 37 bits keeps ids exact JS
// numbers; the counter starts from milliseconds, so it moves past any id used before a
// restart unless the clock went back.

const suffixBits = 37;
const suffixSpace = 2 ** suffixBits;

export class IdGenerator {
  private readonly prefix: number;
  private suffix: number;

  constructor(memberId: number, nowMs: number) {
    this.prefix = (memberId % 0x10000) * suffixSpace;
    this.suffix = (nowMs * 16) % suffixSpace;
  }

  next(): number {
    this.suffix = (this.suffix + 1) % suffixSpace;
    return this.prefix + this.suffix;
  }
}
