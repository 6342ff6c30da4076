// Expired leases are revoked by proposals through raft, never by a local delete, so every member applies the same
// revocation at the same index (etcd's revokeExpiredLeases). Only the primary lessor (the leader's) finds any. At most
// LEASE_REVOKE_RATE / 2 are taken every 500 ms and at most MAX_PENDING_REVOKES proposals are in flight, so a mass
// expiry never crowds out client writes; a lease whose revocation failed is found again later (see findExpired).
import { ErrGRPCLeaseNotFound } from "../apply_errors.ts";
import type { Logger } from "../logger.ts";
import { LEASE_REVOKE_RATE, type Lessor } from "./lessor.ts";

const INTERVAL_MS = 500;
/** etcd's maxPendingRevokes. */
const MAX_PENDING_REVOKES = 16;

export class LeaseExpiry {
  #timer: ReturnType<typeof setInterval> | undefined;
  #backlog: bigint[] = [];
  #pending = 0;

  constructor(
    private readonly lessor: Lessor,
    private readonly revoke: (id: bigint) => Promise<unknown>,
    private readonly onExpired: () => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.#tick(), INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#backlog = [];
  }

  #tick(): void {
    // a backlog not yet proposed holds what the last ticks found; finding more would only grow it
    if (this.#backlog.length > 0) return;
    this.#backlog = this.lessor.findExpired(LEASE_REVOKE_RATE / 2).map((l) => l.id).reverse();
    this.#next();
  }

  #next(): void {
    while (this.#pending < MAX_PENDING_REVOKES && this.#backlog.length > 0) {
      const id = this.#backlog.pop()!;
      this.#pending++;
      this.revoke(id).then(
        () => this.onExpired(),
        (err) => {
          // lease-not-found: revoked meanwhile by a client; anything else is retried when it is found again
          if (err !== ErrGRPCLeaseNotFound) {
            this.logger.warn("failed to revoke lease", { "lease-id": id.toString(16), error: String(err) });
          }
        },
      ).finally(() => {
        this.#pending--;
        this.#next();
      });
    }
  }
}
