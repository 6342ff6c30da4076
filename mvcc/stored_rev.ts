/**
 * A revision a restore read from the backend's "key" bucket, whose KeyValue is decoded from the stored bytes when it
 * is first read, as etcd reads values from bbolt when asked. A restart then makes one object per revision instead of
 * a KeyValue, a view of its value and its revisions' BigInts (195k revisions: ~600k fewer objects made and kept
 * through collections); what the index needs meanwhile (key, create revision, version, lease) comes from
 * scanKeyValue. Never a tombstone: those are restored as KeyValues (they hold nothing to decode).
 *
 * A restored key whose one revision this is has no KeyIndex: the revision stands in the index for it and answers its
 * reads (KeyHistory), until a write to the key or a second restored revision makes the KeyIndex (see TreeIndex).
 * Most keys of a restart are so (152,837 of 154,216 on a cluster benchmark member). The index keeps such a revision
 * as its position in the replayed revisions, and makes its StoredRev when it is read (StoredRev.at): no object per
 * key at all (offline restore of that member's backend: 343-435 -> 186-211 ms, heap 44 -> 30 MB).
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import type { GetResult, IndexRev, KeyHistory } from "./key_index.ts";
import { decodeKeyValue, scanKeyValue, scanned } from "./kv_codec.ts";
import type { ReplayedRevisions } from "./replayed_revisions.ts";
import type { Revision } from "./revision.ts";

/** A revision's create revision: a restored one's read in place (a put over it needs no more than that). */
export function createRevisionOf(r: IndexRev): bigint {
  return r instanceof StoredRev ? r.createRevision() : r.kv.createRevision;
}

/** A revision's lease: a restored one's as its restore scanned it, its KeyValue not decoded. */
export function leaseOf(r: IndexRev): bigint {
  return r instanceof StoredRev ? r.lease : r.kv.lease;
}

export class StoredRev implements IndexRev, KeyHistory {
  #kv: KeyValue | undefined;

  constructor(
    readonly main: number,
    readonly sub: number,
    /** The key index's key: the decoded KeyValue shares it. */
    readonly key: Uint8Array,
    readonly lease: bigint,
    /** The stored KeyValue is buf[start, end): a replayed chunk of the backend's log (see replayLog). */
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly end: number,
  ) {}

  /** The live revision at position `at` of `r`, its key a view of its stored bytes. */
  static at(r: ReplayedRevisions, at: number): StoredRev {
    const buf = r.bufAt(at), start = r.startAt(at), end = r.endAt(at);
    if (end < 0 || r.isTombstoneAt(at)) throw new Error(`mvcc: replayed revision ${at} is not a live revision`);
    scanKeyValue(buf, start, end);
    const key = buf.subarray(scanned.keyStart, scanned.keyEnd);
    return new StoredRev(r.mainAt(at), r.subAt(at), key, scanned.lease, buf, start, end);
  }

  get kv(): KeyValue {
    return this.#kv ??= decodeKeyValue(this.buf, this.start, this.end, this.key);
  }

  /** kv.createRevision, read in place: a put over it needs only that (and the lease), not the value decoded. */
  createRevision(): bigint {
    if (this.#kv !== undefined) return this.#kv.createRevision;
    scanKeyValue(this.buf, this.start, this.end);
    return BigInt(scanned.createRevision);
  }

  /** The bytes stored in the "key" bucket: what storedValue(this.kv) would encode again. */
  stored(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  get storedSize(): number {
    return this.end - this.start;
  }

  /** Its generation's creation, as etcd restores it ((create revision, 0): itself when that is what it is), and version. */
  created(): { created: Revision; ver: number } {
    scanKeyValue(this.buf, this.start, this.end);
    const cr = scanned.createRevision;
    return { created: cr === this.main && this.sub === 0 ? this : { main: cr, sub: 0 }, ver: scanned.version };
  }

  // KeyHistory of a key that has this one revision

  get live(): IndexRev {
    return this;
  }

  get(atRev: number): GetResult | null {
    if (atRev < this.main) return null;
    const { created, ver } = this.created();
    return { rev: this, created, ver };
  }

  getRev(atRev: number): IndexRev | null {
    return atRev < this.main ? null : this;
  }

  since(rev: number): IndexRev[] {
    return this.main >= rev ? [this] : [];
  }

  forEachRev(fn: (r: IndexRev) => void): void {
    fn(this);
  }
}
