/**
 * A revision a restore read from the backend's "key" bucket, whose KeyValue is decoded from the stored bytes when it
 * is first read, as etcd reads values from bbolt when asked. A restart then makes one object per revision instead of
 * a KeyValue, a view of its value and its revisions' BigInts (195k revisions: ~600k fewer objects made and kept
 * through collections); what the index needs meanwhile (key, create revision, version, lease) comes from
 * scanKeyValue. Never a tombstone: those are restored as KeyValues (they hold nothing to decode).
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import type { IndexRev } from "./key_index.ts";
import { decodeKeyValue } from "./kv_codec.ts";

export class StoredRev implements IndexRev {
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

  get kv(): KeyValue {
    return this.#kv ??= decodeKeyValue(this.buf, this.start, this.end, this.key);
  }

  /** The bytes stored in the "key" bucket: what storedValue(this.kv) would encode again. */
  stored(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  get storedSize(): number {
    return this.end - this.start;
  }
}
