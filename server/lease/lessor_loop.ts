// The primary lessor's work every 500 ms (etcd's lessor.runLoop with the server's revokeExpiredLeases), all of it by
// proposals through raft so that every member applies the same at the same index:
// - expired leases are revoked, never deleted locally: at most LEASE_REVOKE_RATE / 2 taken per turn and
//   MAX_PENDING_REVOKES proposals in flight, so a mass expiry never crowds out client writes; a lease whose
//   revocation failed is found again later (see findExpired);
// - with --experimental-enable-lease-checkpoint, due checkpoints go out in batches of MAX_CHECKPOINT_BATCH.
// A lessor that is not the primary finds nothing to do.
import { ErrGRPCLeaseNotFound } from "../apply_errors.ts";
import type { Logger } from "../logger.ts";
import { type Checkpoint, LEASE_REVOKE_RATE, type Lessor } from "./lessor.ts";

const INTERVAL_MS = 500;
/** etcd's maxPendingRevokes. */
const MAX_PENDING_REVOKES = 16;
/** etcd's maxLeaseCheckpointBatchSize; at most leaseCheckpointRate / 2 (500) batches a turn, as etcd. */
const MAX_CHECKPOINT_BATCH = 1000;
const MAX_CHECKPOINT_BATCHES = 500;

export interface LessorLoopDeps {
  revoke(id: bigint): Promise<unknown>;
  checkpoint(cps: Checkpoint[]): Promise<unknown>;
  /** A lease expired and was revoked. */
  expired(): void;
  logger: Logger;
}

export class LessorLoop {
  #timer: ReturnType<typeof setInterval> | undefined;
  #backlog: bigint[] = [];
  #pending = 0;

  constructor(private readonly lessor: Lessor, private readonly deps: LessorLoopDeps) {}

  start(): void {
    this.#timer = setInterval(() => this.#tick(), INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#backlog = [];
  }

  #tick(): void {
    // a backlog not yet proposed holds what the last turns found; finding more would only grow it
    if (this.#backlog.length === 0) {
      this.#backlog = this.lessor.findExpired(LEASE_REVOKE_RATE / 2).map((l) => l.id).reverse();
      this.#nextRevokes();
    }
    for (let i = 0; i < MAX_CHECKPOINT_BATCHES; i++) {
      const cps = this.lessor.dueCheckpoints(MAX_CHECKPOINT_BATCH);
      if (cps.length > 0) {
        this.deps.checkpoint(cps).catch((err) =>
          this.deps.logger.warn("failed to checkpoint leases", { count: cps.length, error: String(err) })
        );
      }
      if (cps.length < MAX_CHECKPOINT_BATCH) break;
    }
  }

  #nextRevokes(): void {
    while (this.#pending < MAX_PENDING_REVOKES && this.#backlog.length > 0) {
      const id = this.#backlog.pop()!;
      this.#pending++;
      this.deps.revoke(id).then(
        () => this.deps.expired(),
        (err) => {
          // lease-not-found: revoked meanwhile by a client; anything else is retried when it is found again
          if (err !== ErrGRPCLeaseNotFound) {
            this.deps.logger.warn("failed to revoke lease", { "lease-id": id.toString(16), error: String(err) });
          }
        },
      ).finally(() => {
        this.#pending--;
        this.#nextRevokes();
      });
    }
  }
}
