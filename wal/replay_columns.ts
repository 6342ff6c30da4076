// The first pass of a WAL replay (readAll): its records taken in order into columns (an entry's term and type, where its
// data lie), the last hard state, the metadata, whether the snapshot marker was met, with no object per entry; the
// entries are made from its columns afterwards, without touching their data.
import { emptyHardState, type Entry, type HardState } from "../raft/types.ts";
import { ERR_METADATA_CONFLICT, ERR_SLICE_OUT_OF_RANGE, ERR_SNAPSHOT_MISMATCH, WalError } from "./errors.ts";
import { isMapped, releasePages } from "./mapped_file.ts";
import { decodeHardState, type EntryFields, entryFields } from "./raft_codec.ts";
import { decodeWalSnapshot, RecordType, type WalSnapshot } from "./walpb.ts";

/**
 * Replay keeps its columns (a record's type and data range, an entry's term...) in typed arrays grown by doubling from
 * this many: pushing onto JS arrays was most of a restart's WAL scan (185k records: 3 arrays, then 5 more for 86k
 * entries).
 */
export const COLUMN_START = 4096;

/** `a` in an array twice its length. */
export function doubled<T extends Uint8Array | Uint32Array | Float64Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * The entries after `start` as columns: entry k (index start.index + 1 + k) has term `terms[k]`, type `types[k]` and
 * data `segments[segmentOf[k]].subarray(starts[k], ends[k])`, where segment s is the s-th replayed, oldest first.
 */
export class ReplayColumns {
  #terms: Float64Array;
  #types: Float64Array;
  #starts: Uint32Array;
  #ends: Uint32Array;
  #segmentOf: Uint32Array;
  #count = 0;
  state: HardState = emptyHardState();
  metadata: Uint8Array | null = null;
  /** Whether the marker of the snapshot replayed from was met (readAll fails without it). */
  match = false;
  /** The index of the last entry or snapshot marker met. */
  enti = 0;
  readonly #f: EntryFields = { term: 0, index: 0, type: 0, dataStart: 0, dataEnd: 0 };

  /** `capacity`: as many as the records expected (a scan's count), so that no column grows (~20 ms of copies). */
  constructor(readonly start: WalSnapshot, capacity: number) {
    const n = Math.max(COLUMN_START, capacity);
    this.#terms = new Float64Array(n);
    this.#types = new Float64Array(n);
    this.#starts = new Uint32Array(n);
    this.#ends = new Uint32Array(n);
    this.#segmentOf = new Uint32Array(n);
  }

  /** Takes the record of type `type` whose data are buf[from, to), in segment `seg` (0 for the first replayed). */
  record(type: number, seg: number, buf: Uint8Array, from: number, to: number): void {
    switch (type) {
      case RecordType.Entry: {
        const f = this.#f;
        entryFields(buf, from, to, f);
        // an entry the snapshot covers is only counted: a restart's first segment may hold many
        if (f.index <= this.start.index) {
          this.enti = f.index;
          return;
        }
        const up = f.index - this.start.index - 1;
        if (up > this.#count) {
          throw new WalError(`${ERR_SLICE_OUT_OF_RANGE}: entry ${f.index} after ${this.start.index + this.#count}`);
        }
        const k = this.#count = up; // it replaces those at its index and after
        if (k === this.#terms.length) this.#grow();
        this.#terms[k] = f.term;
        this.#types[k] = f.type;
        this.#starts[k] = f.dataStart;
        this.#ends[k] = f.dataEnd;
        this.#segmentOf[k] = seg;
        this.#count++;
        this.enti = f.index;
        return;
      }
      case RecordType.State:
        this.state = decodeHardState(buf.subarray(from, to));
        return;
      case RecordType.Metadata: {
        const data = buf.subarray(from, to);
        if (this.metadata !== null && !bytesEqual(this.metadata, data)) throw new WalError(ERR_METADATA_CONFLICT);
        this.metadata ??= data.slice(); // kept: not a view of the segment, which goes once replayed
        return;
      }
      case RecordType.Crc:
        return; // the decoder checks the chain
      case RecordType.Snapshot: {
        const s = decodeWalSnapshot(buf.subarray(from, to));
        if (s.index === this.start.index) {
          if (s.term !== this.start.term) {
            throw new WalError(`${ERR_SNAPSHOT_MISMATCH}: ${s.term} != ${this.start.term}`);
          }
          this.match = true;
        }
        if (this.enti < s.index) this.enti = s.index;
        return;
      }
      default:
        throw new WalError(`wal: unexpected record type ${type}`);
    }
  }

  #grow(): void {
    this.#terms = doubled(this.#terms);
    this.#types = doubled(this.#types);
    this.#starts = doubled(this.#starts);
    this.#ends = doubled(this.#ends);
    this.#segmentOf = doubled(this.#segmentOf);
  }

  /** The index of the last entry replayed (the start's when there is none). */
  get lastIndex(): number {
    return this.start.index + this.#count;
  }

  /** The term of entry `index` (the start's for the start's index). */
  termOf(index: number): number {
    const k = index - this.start.index - 1;
    if (k === -1) return this.start.term;
    if (k < 0 || k >= this.#count) throw new WalError(`${ERR_SLICE_OUT_OF_RANGE}: no entry ${index} replayed`);
    return this.#terms[k];
  }

  /**
   * The entries after index `after` (the start's by default), their data views of `segments` (segment s's bytes at s).
   * `visit` sees every entry (those before `after` too) while its bytes are at hand: its data is buf[start, end), and
   * reading it later faults released pages back in. Then `after()` tells where the entries made begin: the caller
   * holds what the ones before did (a restart, the backend that applied them), and no object is made for them.
   * A mapped segment's pages are let go once its entries are made (read again, they come from the page cache); from a
   * segment read into memory, the entries' data are copied out in one piece (from the first one's data to the last
   * one's, with the few bytes of framing between), so that the buffer (with every record the snapshot covers) goes
   * once the replay is done.
   */
  entries(segments: Uint8Array[], visit?: EntryVisitor, after?: () => number): Entry[] {
    const terms = this.#terms, types = this.#types, starts = this.#starts, ends = this.#ends;
    const segmentOf = this.#segmentOf, count = this.#count;
    const first = this.start.index + 1;
    if (visit !== undefined) {
      for (let k = 0; k < count; k++) visit(first + k, types[k], segments[segmentOf[k]], starts[k], ends[k]);
    }
    const from = after === undefined ? 0 : after() - this.start.index;
    if (from < 0 || from > count) {
      throw new WalError(
        `${ERR_SLICE_OUT_OF_RANGE}: entries after ${from + this.start.index} of ${first}..${first + count - 1}`,
      );
    }
    const entries: Entry[] = [];
    for (let k = from; k < count;) {
      const seg = segmentOf[k], buf = segments[seg];
      if (isMapped(buf)) {
        for (; k < count && segmentOf[k] === seg; k++) {
          const data = ends[k] > starts[k] ? buf.subarray(starts[k], ends[k]) : EMPTY;
          entries.push({ term: terms[k], index: first + k, type: types[k], data });
        }
        continue;
      }
      let j = k, lo = Infinity, hi = 0;
      for (; j < count && segmentOf[j] === seg; j++) {
        if (ends[j] > starts[j]) {
          lo = Math.min(lo, starts[j]);
          hi = Math.max(hi, ends[j]);
        }
      }
      const copy = lo < hi ? new Uint8Array(hi - lo) : EMPTY;
      if (lo < hi) copy.set(buf.subarray(lo, hi));
      for (; k < j; k++) {
        const data = ends[k] > starts[k] ? copy.subarray(starts[k] - lo, ends[k] - lo) : EMPTY;
        entries.push({ term: terms[k], index: first + k, type: types[k], data });
      }
    }
    for (const buf of segments) if (isMapped(buf)) releasePages(buf);
    return entries;
  }
}

/** An entry met by a replay: its data are buf[start, end) (see ReplayColumns.entries). */
export type EntryVisitor = (index: number, type: number, buf: Uint8Array, start: number, end: number) => void;

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
