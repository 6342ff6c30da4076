/**
 * Read and write transactions of the KVStore. Transactions are synchronous: a write transaction must be ended in
 * the same synchronous run it was opened in, which makes it atomic with respect to readers and to backend commits.
 *
 * Range `end` follows etcd requests: undefined or empty is the single key `key`, "\0" means every key >= key.
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { EMPTY_BYTES, ownBytes, ownKeyValue } from "./bytes.ts";
import { BUCKET } from "./backend.ts";
import { ErrCompacted, ErrFutureRev } from "./errors.ts";
import { type KeyHistory, KeyIndex } from "./key_index.ts";
import { encodedKeyValueSize, newKeyValue, storedValue, writeKeyValue } from "./kv_codec.ts";
import type { KVStore } from "./kvstore.ts";
import { MARKED_REV_BYTES_LEN, REV_BYTES_LEN, writeRev } from "./revision.ts";
import { createRevisionOf, leaseOf } from "./stored_rev.ts";

// revision keys are written here and copied into the backend's log at once (the "key" bucket is detached)
const REV_SCRATCH = new Uint8Array(REV_BYTES_LEN);
const TOMBSTONE_SCRATCH = new Uint8Array(MARKED_REV_BYTES_LEN);

export interface RangeOptions {
  /** Revision to read at; 0 or absent means the transaction's revision. */
  rev?: number;
  /** Max number of kvs returned; 0 or absent means no limit. `count` still counts every match. */
  limit?: number;
  /** Return only the count. */
  countOnly?: boolean;
}

export interface RangeResult {
  /** Shared immutable KeyValue objects: never modify them. */
  kvs: KeyValue[];
  count: number;
  rev: number;
}

/** Converts request-style range end to the index convention (undefined: single key, empty: unbounded). */
export function indexEnd(end: Uint8Array | undefined): Uint8Array | undefined {
  if (end === undefined || end.length === 0) return undefined;
  if (end.length === 1 && end[0] === 0) return EMPTY_BYTES;
  return end;
}

function rangeKeys(
  s: KVStore,
  key: Uint8Array,
  end: Uint8Array | undefined,
  curRev: number,
  ro: RangeOptions,
): RangeResult {
  let rev = ro.rev ?? 0;
  if (rev > curRev) throw ErrFutureRev;
  if (rev <= 0) rev = curRev;
  if (rev < s.compactMainRev) throw ErrCompacted;
  const limit = ro.limit ?? 0;
  const kvs: KeyValue[] = [];
  let count = 0;
  s.index.visit(key, indexEnd(end), (ki) => {
    const r = ki.getRev(rev);
    if (r === null) return;
    count++;
    if (!ro.countOnly && (limit <= 0 || kvs.length < limit)) kvs.push(r.kv);
  });
  return { kvs, count, rev: curRev };
}

// BigInts are heap objects: share the common small versions instead of allocating one per put.
const SMALL_VERSIONS = Array.from({ length: 256 }, (_, i) => BigInt(i));

function bigVersion(n: number): bigint {
  return n < SMALL_VERSIONS.length ? SMALL_VERSIONS[n] : BigInt(n);
}

/** A consistent read view at the store revision when it was opened. */
export class TxnRead {
  readonly #s: KVStore;
  /** The revision reads default to. */
  readonly rev: number;
  /** The compacted revision when the view was opened; reads below it fail. */
  readonly firstRev: number;

  constructor(s: KVStore) {
    this.#s = s;
    this.rev = s.rev;
    this.firstRev = s.compactMainRev;
  }

  range(key: Uint8Array, end?: Uint8Array, ro: RangeOptions = {}): RangeResult {
    return rangeKeys(this.#s, key, end, this.rev, ro);
  }
}

/** A write transaction: every change gets main revision rev+1 and increasing sub revisions. */
export class TxnWrite {
  readonly #s: KVStore;
  /** The store revision before this transaction. */
  readonly rev: number;
  /** Changes in order; deletions are KeyValues with only key and mod_revision (version 0). */
  readonly changes: KeyValue[] = [];
  readonly #nextRev: number;
  readonly #nextRevBig: bigint;
  #ended = false;

  constructor(s: KVStore) {
    this.#s = s;
    this.rev = s.rev;
    this.#nextRev = this.rev + 1;
    this.#nextRevBig = BigInt(this.#nextRev);
  }

  /** The compacted revision. */
  get firstRev(): number {
    return this.#s.compactMainRev;
  }

  /** Reads see this transaction's own changes. */
  range(key: Uint8Array, end?: Uint8Array, ro: RangeOptions = {}): RangeResult {
    return rangeKeys(this.#s, key, end, this.changes.length > 0 ? this.#nextRev : this.rev, ro);
  }

  /** Puts key=value with lease (0n: none); returns the revision of the change. */
  put(key: Uint8Array, value: Uint8Array, lease = 0n): number {
    this.#assertOpen();
    const s = this.#s;
    const rev = this.#nextRev;
    const sub = this.changes.length;
    let ki = s.index.keyIndex(key);
    const prev = ki?.get(rev) ?? null;
    if (ki === undefined) {
      const owned = ownKeyValue(key, value);
      ki = new KeyIndex(owned.key);
      s.index.insert(ki);
      value = owned.value;
    } else {
      value = ownBytes(value);
    }
    const kv = newKeyValue(
      ki.key,
      value,
      prev === null ? this.#nextRevBig : createRevisionOf(prev.rev),
      this.#nextRevBig,
      bigVersion(prev === null ? 1 : prev.ver + 1),
      lease,
    );
    // the revision and the KeyValue go straight into the backend's log: the index keeps the change decoded
    s.backend.putWith(
      BUCKET.key,
      writeRev(REV_SCRATCH, rev, sub),
      encodedKeyValueSize(kv),
      (buf, pos) => writeKeyValue(buf, pos, kv),
    );
    ki.put(rev, sub, kv);
    this.changes.push(kv);
    const oldLease = prev === null ? 0n : leaseOf(prev.rev);
    if (s.lessor !== undefined) {
      if (oldLease !== 0n) s.lessor.detach(oldLease, ki.key);
      if (lease !== 0n) s.lessor.attach(lease, ki.key);
    }
    return rev;
  }

  /** Deletes the keys in range; returns the number deleted and the resulting revision. */
  deleteRange(key: Uint8Array, end?: Uint8Array): { deleted: number; rev: number } {
    this.#assertOpen();
    const s = this.#s;
    const readRev = this.changes.length > 0 ? this.#nextRev : this.rev;
    const victims: KeyHistory[] = [];
    const leases: bigint[] = [];
    s.index.visit(key, indexEnd(end), (h) => {
      const r = h.getRev(readRev);
      if (r === null) return;
      victims.push(h);
      leases.push(leaseOf(r));
    });
    for (let i = 0; i < victims.length; i++) {
      const v = victims[i];
      const ki = v instanceof KeyIndex ? v : s.index.keyIndex(v.key)!;
      const sub = this.changes.length;
      const tomb = newKeyValue(ki.key, EMPTY_BYTES, 0n, this.#nextRevBig, 0n, 0n);
      s.backend.put(BUCKET.key, writeRev(TOMBSTONE_SCRATCH, this.#nextRev, sub, true), storedValue(tomb));
      if (!ki.tombstone(this.#nextRev, sub, tomb)) throw new Error("mvcc: failed to tombstone an existing key");
      this.changes.push(tomb);
      if (s.lessor !== undefined && leases[i] !== 0n) s.lessor.detach(leases[i], ki.key);
    }
    if (victims.length !== 0 || this.changes.length > 0) return { deleted: victims.length, rev: this.#nextRev };
    return { deleted: 0, rev: this.rev };
  }

  /** Commits the transaction to memory (and to the backend's current batch) and bumps the store revision. */
  end(): void {
    this.#assertOpen();
    this.#ended = true;
    this.#s.endWrite(this);
  }

  #assertOpen(): void {
    if (this.#ended) throw new Error("mvcc: write txn already ended");
  }
}
