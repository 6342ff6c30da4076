// IDs unique across members and restarts, laid out as etcd's pkg/idutil: the low 16 bits of the member ID, then 40
// bits of the start time in ms, then an 8-bit counter. The counter carries into the time bits, so a restart (which
// starts from a later time) never reuses an ID unless the clock went back.

const SUFFIX_BITS = 48;
const SUFFIX_SPACE = 2 ** SUFFIX_BITS;
const TIME_SPACE = 2 ** 40;

export class IdGenerator {
  /** The member ID's low 16 bits. */
  readonly prefix: number;
  readonly #high: bigint;
  #suffix: number;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = Number(memberId & 0xffffn);
    this.#high = BigInt(this.prefix) << BigInt(SUFFIX_BITS);
    this.#suffix = (Math.floor(nowMs) % TIME_SPACE) * 256;
  }

  /**
   * The next ID's low 48 bits, a JS number: unique among this member's IDs, so what its own bookkeeping (the
   * proposals waiting for their entries) keys by. full() gives the ID.
   */
  next(): number {
    this.#suffix = (this.#suffix + 1) % SUFFIX_SPACE;
    return this.#suffix;
  }

  /** The whole ID, 64 bits, of a suffix next() gave. */
  full(suffix: number): bigint {
    return this.#high | BigInt(suffix);
  }

  /** The suffix of an ID this generator gave, -1 for any other. */
  ownSuffix(id: bigint): number {
    return id >> BigInt(SUFFIX_BITS) === BigInt(this.prefix) ? Number(id & 0xffff_ffff_ffffn) : -1;
  }

  /** The next whole ID (etcd's Generator.Next). */
  nextBig(): bigint {
    return this.full(this.next());
  }
}
