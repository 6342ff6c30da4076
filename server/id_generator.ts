// IDs unique across members and restarts, laid out as etcd's pkg/idutil: the low 16 bits of the member ID, then 40
// bits of the start time in ms, then an 8-bit counter. The counter carries into the time bits, so a restart (which
// starts from a later time) never reuses an ID unless the clock went back.

const SUFFIX_BITS = 48;
const SUFFIX_SPACE = 2 ** SUFFIX_BITS;
const TIME_SPACE = 2 ** 40;
/** IDs as JS numbers keep the low 53 bits: the suffix and the prefix's low 5 bits. */
const NUMBER_PREFIX_SPACE = 2 ** (53 - SUFFIX_BITS);

export class IdGenerator {
  readonly #prefix: number;
  #suffix: number;

  constructor(memberId: bigint, nowMs: number) {
    this.#prefix = Number(memberId & 0xffffn);
    this.#suffix = (Math.floor(nowMs) % TIME_SPACE) * 256;
  }

  /** The next ID, all 64 bits (etcd's Generator.Next). */
  nextBig(): bigint {
    this.#step();
    return (BigInt(this.#prefix) << BigInt(SUFFIX_BITS)) | BigInt(this.#suffix);
  }

  /**
   * The next ID's low 53 bits, exact as a JS number: unique for this member (request IDs, which carry no further
   * than this member's own wait list).
   */
  next(): number {
    this.#step();
    return (this.#prefix % NUMBER_PREFIX_SPACE) * SUFFIX_SPACE + this.#suffix;
  }

  #step(): void {
    this.#suffix = (this.#suffix + 1) % SUFFIX_SPACE;
  }
}
