// The lessor (etcd's lease.lessor): every lease, the keys attached to each, and — on the leader only, the primary
// lessor — when each expires. Leases are granted, revoked and checkpointed only by applying raft entries, so every
// member holds the same leases; expiry is only decided here: the server proposes the revocation of what
// findExpired() returns, and the keys go when that proposal is applied, like any delete. Leases live in the backend's
// "lease" bucket as etcd's leasepb.Lease (the attached keys are found again from the key-value store on restart).
import { type Backend, BUCKET } from "../../mvcc/backend.ts";
import type { LeaseAttacher } from "../../mvcc/kvstore.ts";
import { latin1 } from "../../mvcc/bytes.ts";
import { ProtoReader, ProtoWriter } from "../../wal/proto_wire.ts";
import { ErrGRPCLeaseExist, ErrGRPCLeaseNotFound, ErrGRPCLeaseTTLTooLarge, RpcError } from "../apply_errors.ts";
import { LeaseQueue } from "./lease_queue.ts";

/** etcd's MaxLeaseTTL, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;
/** etcd's leaseRevokeRate: at most this many expired leases are revoked a second. */
export const LEASE_REVOKE_RATE = 1000;
/** How long an expired lease waits before its revocation is proposed again (etcd's expiredLeaseRetryInterval). */
const EXPIRED_RETRY_MS = 3000;
/** etcd's defaultLeaseCheckpointInterval. */
const CHECKPOINT_INTERVAL_MS = 5 * 60_000;

/** A lease's remaining TTL in seconds, as a LeaseCheckpoint carries it. */
export interface Checkpoint {
  id: bigint;
  remainingTTL: number;
}

/** A lessor that is not the primary (not the leader) neither renews nor expires (etcd's ErrNotPrimary). */
export class NotPrimaryError extends Error {
  override name = "NotPrimaryError";
}

export class Lease {
  /** When it expires, in ms on the lessor's clock; Infinity while this lessor is not the primary. */
  expiry = Infinity;
  /** Its expiry-queue item's time: an item with another time is stale. */
  queuedAt = Infinity;
  /** The keys attached, as latin1 strings (one char per byte, so they sort in byte order); made on first attach. */
  keys: Set<string> | undefined;
  /** Renewals of the lease after it expired wait for its revocation (or the lessor's demotion). */
  waiters: { resolve: () => void; reject: (e: unknown) => void }[] | undefined;

  constructor(
    readonly id: bigint,
    /** Granted TTL in seconds (raised to this member's minimum on recovery, as etcd's). */
    public ttl: number,
    /** The last checkpointed remaining TTL in seconds; 0: none, the full TTL applies. */
    public remainingTTL = 0,
  ) {}

  /** The attached keys in byte order. */
  sortedKeys(): Uint8Array[] {
    return [...this.keys ?? []].sort().map((k) => Uint8Array.from(k, (c) => c.charCodeAt(0)));
  }

  /** What a (re)start of the countdown counts from: the checkpointed remaining TTL if any. */
  get countdownTTL(): number {
    return this.remainingTTL > 0 ? this.remainingTTL : this.ttl;
  }
}

export interface LessorOptions {
  /** TTLs below this many seconds are raised to it (etcd: 1.5 election timeouts, rounded up). */
  minTTL: number;
  /** The clock, in ms (default performance.now). */
  now?: () => number;
  /** --experimental-enable-lease-checkpoint-persist: checkpoints are also kept in the backend (across restarts). */
  checkpointPersist?: boolean;
  /** Default etcd's 5 minutes. */
  checkpointIntervalMs?: number;
}

export class Lessor implements LeaseAttacher {
  readonly #leases = new Map<bigint, Lease>();
  readonly #expiries = new LeaseQueue();
  readonly #checkpoints = new LeaseQueue();
  #backend: Backend;
  readonly #minTTL: number;
  readonly #now: () => number;
  #checkpointer: ((cps: Checkpoint[]) => Promise<unknown>) | undefined;
  readonly #checkpointPersist: boolean;
  readonly #checkpointIntervalMs: number;
  #primary = false;

  constructor(backend: Backend, opts: LessorOptions) {
    this.#backend = backend;
    this.#minTTL = opts.minTTL;
    this.#now = opts.now ?? (() => performance.now());
    this.#checkpointPersist = opts.checkpointPersist ?? false;
    this.#checkpointIntervalMs = opts.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS;
    this.#load();
  }

  /**
   * Takes the leases of `backend`, a backend received with a leader's snapshot, in place of its own (etcd's
   * Recover); the store attaches their keys as it restores. Renewals waiting on a revocation end as if it happened.
   */
  recover(backend: Backend): void {
    for (const l of this.#leases.values()) for (const w of l.waiters ?? []) w.resolve();
    this.#leases.clear();
    this.#expiries.clear();
    this.#checkpoints.clear();
    this.#backend = backend;
    this.#load();
    if (!this.#primary) return;
    for (const l of this.#leases.values()) {
      this.#refresh(l, 0);
      this.#scheduleCheckpoint(l);
    }
  }

  #load(): void {
    const backend = this.#backend;
    if (!backend.hasBucket(BUCKET.lease)) backend.createBucket(BUCKET.lease);
    backend.forEach(BUCKET.lease, (_k, v) => {
      const l = decodeLease(v);
      this.#leases.set(l.id, new Lease(l.id, l.ttl, l.remainingTTL));
    });
    // the leases are the bucket's content: the backend need not keep a copy of each
    backend.detach(BUCKET.lease, {
      forEach: (fn) => {
        const ids = [...this.#leases.keys()].sort((a, b) => cmpUint64(a, b));
        for (const id of ids) fn(leaseKey(id), encodeLease(this.#leases.get(id)!));
      },
    });
    // a stored TTL below this member's minimum is raised, as etcd's recovery does
    for (const l of this.#leases.values()) if (l.ttl < this.#minTTL) l.ttl = this.#minTTL;
  }

  get isPrimary(): boolean {
    return this.#primary;
  }

  get size(): number {
    return this.#leases.size;
  }

  lookup(id: bigint): Lease | undefined {
    return this.#leases.get(id);
  }

  /** Every lease, soonest to expire first. */
  leases(): Lease[] {
    return [...this.#leases.values()].sort((a, b) => a.expiry - b.expiry);
  }

  /** Remaining ms of a lease (Infinity while not the primary). */
  remainingMs(l: Lease): number {
    return l.expiry - this.#now();
  }

  /** Applies a LeaseGrant (etcd's Grant). */
  grant(id: bigint, ttl: number): Lease {
    if (id === 0n) throw ErrGRPCLeaseNotFound;
    if (ttl > MAX_LEASE_TTL) throw ErrGRPCLeaseTTLTooLarge;
    if (this.#leases.has(id)) throw ErrGRPCLeaseExist;
    const l = new Lease(id, Math.max(ttl, this.#minTTL));
    this.#leases.set(id, l);
    if (this.#primary) {
      this.#refresh(l, 0);
      this.#scheduleCheckpoint(l);
    }
    this.#persist(l);
    return l;
  }

  /**
   * Applies a LeaseRevoke (etcd's Revoke): `deleteKeys` deletes the attached keys, given in byte order so that every
   * member deletes them alike, in one write transaction; the lease leaves the backend in the same batch.
   */
  revoke(id: bigint, deleteKeys: (keys: Uint8Array[]) => void): void {
    const l = this.#leases.get(id);
    if (l === undefined) throw ErrGRPCLeaseNotFound;
    const keys = l.sortedKeys();
    if (keys.length > 0) deleteKeys(keys);
    this.#leases.delete(id);
    this.#backend.delete(BUCKET.lease, leaseKey(id), encodeLease(l).length);
    for (const w of l.waiters ?? []) w.resolve();
    l.waiters = undefined;
  }

  /** Applies a LeaseCheckpoint: the remaining TTL a new primary counts down from (etcd's Checkpoint). */
  checkpoint(id: bigint, remainingTTL: number): void {
    const l = this.#leases.get(id);
    if (l === undefined) return;
    if (this.#checkpointPersist) {
      const replaced = encodeLease(l).length;
      l.remainingTTL = remainingTTL;
      this.#persist(l, replaced);
    } else {
      l.remainingTTL = remainingTTL;
    }
    if (this.#primary) this.#scheduleCheckpoint(l);
  }

  /**
   * Restarts a lease's countdown from its full TTL and returns the TTL (etcd's Renew). A lease already expired is
   * being revoked: the renewal waits for that and fails with lease-not-found, as etcd's. A checkpointed remaining TTL
   * is cleared through raft first, so the renewal holds on a new leader too (at most two checkpoint entries per lease
   * and interval).
   */
  async renew(id: bigint): Promise<number> {
    if (!this.#primary) throw new NotPrimaryError();
    const l = this.#leases.get(id);
    if (l === undefined) throw ErrGRPCLeaseNotFound;
    if (this.remainingMs(l) <= 0) {
      await new Promise<void>((resolve, reject) => (l.waiters ??= []).push({ resolve, reject }));
      throw ErrGRPCLeaseNotFound;
    }
    if (this.#checkpointer !== undefined && l.remainingTTL > 0) {
      await this.#checkpointer([{ id, remainingTTL: 0 }]);
    }
    this.#refresh(l, 0);
    return l.ttl;
  }

  /**
   * Makes this lessor the primary (the member became leader): every lease counts down afresh from its (checkpointed)
   * TTL plus `extendMs`, so that clients have time to find the new leader; when many would expire together, later ones
   * are spread out so that no more than 3/4 of the revoke rate falls in any second (etcd's Promote).
   */
  promote(extendMs: number): void {
    this.#primary = true;
    this.#expiries.clear();
    this.#checkpoints.clear();
    for (const l of this.#leases.values()) {
      this.#refresh(l, extendMs);
      this.#scheduleCheckpoint(l);
    }
    if (this.#leases.size < LEASE_REVOKE_RATE) return;
    const leases = this.leases();
    const now = this.#now();
    let baseWindow = leases[0].expiry - now;
    let nextWindow = baseWindow + 1000;
    let expires = 0;
    const target = (3 * LEASE_REVOKE_RATE) / 4;
    for (const l of leases) {
      const remaining = l.expiry - now;
      if (remaining > nextWindow) {
        baseWindow = remaining;
        nextWindow = baseWindow + 1000;
        expires = 1;
        continue;
      }
      expires++;
      if (expires <= target) continue;
      // leases n seconds past the base window are pushed back by only what they lack
      const delay = 1000 * (expires / target) - (remaining - baseWindow);
      nextWindow = baseWindow + delay;
      this.#refresh(l, delay + extendMs);
    }
  }

  /** No longer the primary (etcd's Demote): nothing expires here, waiting renewals fail with NotPrimary. */
  demote(): void {
    this.#primary = false;
    this.#expiries.clear();
    this.#checkpoints.clear();
    for (const l of this.#leases.values()) {
      l.expiry = l.queuedAt = Infinity;
      for (const w of l.waiters ?? []) w.reject(new NotPrimaryError());
      l.waiters = undefined;
    }
  }

  /**
   * Up to `limit` leases past their expiry, for the server to revoke through raft. Each is looked at again only
   * after EXPIRED_RETRY_MS, so a revocation in flight is not proposed twice, and a lost one is retried.
   */
  findExpired(limit: number): Lease[] {
    const out: Lease[] = [];
    if (!this.#primary) return out;
    const now = this.#now();
    while (out.length < limit) {
      const top = this.#expiries.peek();
      if (top === undefined || top.time > now) break;
      this.#expiries.pop();
      const l = this.#leases.get(top.id);
      if (l === undefined || l.queuedAt !== top.time) continue; // revoked, or renewed since
      l.queuedAt = now + EXPIRED_RETRY_MS;
      this.#expiries.push({ time: l.queuedAt, id: l.id });
      if (l.expiry <= now) out.push(l);
    }
    return out;
  }

  /**
   * Up to `limit` remaining TTLs due to be checkpointed (etcd's findDueScheduledCheckpoints): leases past their
   * interval that have counted down at least a second and have not expired.
   */
  dueCheckpoints(limit: number): Checkpoint[] {
    const out: Checkpoint[] = [];
    if (!this.#primary || this.#checkpointer === undefined) return out;
    const now = this.#now();
    while (out.length < limit) {
      const top = this.#checkpoints.peek();
      if (top === undefined || top.time > now) break;
      this.#checkpoints.pop();
      const l = this.#leases.get(top.id);
      if (l === undefined || now >= l.expiry) continue;
      const remainingTTL = Math.ceil((l.expiry - now) / 1000);
      if (remainingTTL >= l.ttl) continue;
      out.push({ id: l.id, remainingTTL });
    }
    return out;
  }

  /**
   * --experimental-enable-lease-checkpoint (etcd's SetCheckpointer): `cp` proposes checkpoints through raft and
   * resolves once they are applied. The primary then records every long lease's remaining TTL each checkpoint
   * interval (see dueCheckpoints), so that a new leader counts down from it rather than from the full TTL.
   */
  setCheckpointer(cp: (cps: Checkpoint[]) => Promise<unknown>): void {
    this.#checkpointer = cp;
  }

  attach(lease: bigint, key: Uint8Array): void {
    // a key whose lease is gone (it can only be so in a backend written by a faulty member) stays unattached, as etcd
    const l = this.#leases.get(lease);
    if (l !== undefined) (l.keys ??= new Set()).add(latin1(key));
  }

  detach(lease: bigint, key: Uint8Array): void {
    this.#leases.get(lease)?.keys?.delete(latin1(key));
  }

  #refresh(l: Lease, extendMs: number): void {
    l.expiry = l.queuedAt = this.#now() + extendMs + l.countdownTTL * 1000;
    this.#expiries.push({ time: l.queuedAt, id: l.id });
  }

  #scheduleCheckpoint(l: Lease): void {
    if (this.#checkpointer === undefined || l.countdownTTL * 1000 <= this.#checkpointIntervalMs) return;
    this.#checkpoints.push({ time: this.#now() + this.#checkpointIntervalMs, id: l.id });
  }

  /** Writes l to the backend's log; `replacedLength`: the length of the stored lease it replaces (-1: none). */
  #persist(l: Lease, replacedLength = -1): void {
    this.#backend.put(BUCKET.lease, leaseKey(l.id), encodeLease(l), replacedLength);
  }
}

/** The "lease" bucket key: the ID as 8 bytes big-endian, as etcd's int64ToBytes. */
function leaseKey(id: bigint): Uint8Array {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigInt64(0, id);
  return k;
}

/** Byte order of the "lease" bucket's keys: the IDs as unsigned 64-bit numbers. */
function cmpUint64(a: bigint, b: bigint): number {
  const x = BigInt.asUintN(64, a), y = BigInt.asUintN(64, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** leasepb.Lease {ID = 1, TTL = 2, RemainingTTL = 3}, as gogo-protobuf writes it. */
function encodeLease(l: Lease): Uint8Array {
  const w = new ProtoWriter(32);
  if (l.id !== 0n) {
    w.tag(1, 0);
    w.uvarint64(l.id);
  }
  if (l.ttl !== 0) w.varintField(2, l.ttl);
  if (l.remainingTTL !== 0) w.varintField(3, l.remainingTTL);
  return w.view().slice();
}

function decodeLease(b: Uint8Array): { id: bigint; ttl: number; remainingTTL: number } {
  const r = new ProtoReader(b);
  let id = 0n, ttl = 0, remainingTTL = 0;
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === 0x08) id = r.varint64();
    else if (tag === 0x10) ttl = Number(r.varint64());
    else if (tag === 0x18) remainingTTL = Number(r.varint64());
    else r.skip(tag & 7);
  }
  if (id === 0n) throw new RpcError(13, "lease: a stored lease has no ID");
  return { id, ttl, remainingTTL };
}
