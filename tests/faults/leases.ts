// Leases under faults: a client per member grants a lease, attaches a key, keeps the lease alive for a few rounds
// (reading the key after each answered keep-alive), then lets it expire. Checked: no lease expires while its
// keep-alives are answered (a key read gone, or a keep-alive answered "not found", before the last answered
// keep-alive's send time + TTL), and no key outlives its lease (after the run, once every lease had its TTL
// and an election timeout to go, no leased key is left).
import { Buffer } from "node:buffer";
import type { FaultCluster, Node } from "./cluster.ts";
import { gateway, RequestError } from "./client.ts";

/** The TTL the leases are granted with, s. */
export const LEASE_TTL_S = 4;
const PREFIX = "lease/";

interface Round {
  /** the keep-alive: sent, answered, TTL it answered (0: the lease is gone) */
  sent: number;
  answered: number;
  ttl: number;
  /** the read of the key after it: invoked, returned, whether the key was there; undefined when it failed */
  read?: { call: number; ret: number; exists: boolean };
}

export interface LeaseRecord {
  id: string;
  key: string;
  /** when the grant was sent: the lease lives at least until this + TTL */
  granted: number;
  rounds: Round[];
}

export class LeaseWorkload {
  readonly leases: LeaseRecord[] = [];
  #stopped = false;
  #clients: Promise<void>[] = [];

  constructor(
    private readonly cluster: FaultCluster,
    private readonly rand: () => number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.#clients = this.cluster.nodes.map((n, i) => this.#client(i, n));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#clients);
  }

  async #client(id: number, node: Node): Promise<void> {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const call = (path: string, body: unknown) => gateway(this.cluster.endpoint(node), path, body, this.timeoutMs);
    for (let seq = 0; !this.#stopped; seq++) {
      // kept alive past its TTL most of the time (a lease expiring early shows then), every 0.8-1.2 s
      const rounds = 4 + Math.floor(this.rand() * 5), gap = 800 + this.rand() * 400;
      try {
        const granted = performance.now();
        const g = await call("/v3/lease/grant", { TTL: String(LEASE_TTL_S) });
        const lease: LeaseRecord = { id: g.ID, key: `${PREFIX}${id}.${seq}`, granted, rounds: [] };
        await call("/v3/kv/put", { key: b64(lease.key), value: b64("x"), lease: lease.id });
        this.leases.push(lease);
        for (let r = 0; r < rounds && !this.#stopped; r++) {
          await new Promise((res) => setTimeout(res, gap));
          const sent = performance.now();
          const ka = await call("/v3/lease/keepalive", { ID: lease.id });
          // the gateway streams a failed keep-alive as {"error": ...} with status 200: no answer, not "gone" (read
          // as TTL 0, an isolated leader's "no leader" looked like a lease expired early)
          if (ka.result === undefined) {
            throw new RequestError(`keep-alive failed: ${JSON.stringify(ka.error ?? ka)}`, true);
          }
          const round: Round = { sent, answered: performance.now(), ttl: Number(ka.result.TTL ?? 0) };
          lease.rounds.push(round);
          if (round.ttl === 0) break;
          const readCall = performance.now();
          const got = await call("/v3/kv/range", { key: b64(lease.key) });
          round.read = { call: readCall, ret: performance.now(), exists: (got.kvs?.length ?? 0) > 0 };
        }
      } catch (e) {
        if (!(e instanceof RequestError)) throw e;
        // a member down or without a leader: this lease is let go as it is
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }
}

/** Problems with leases that expired while kept alive. */
export function checkKeptAlive(leases: LeaseRecord[]): string[] {
  const problems: string[] = [];
  const ttlMs = LEASE_TTL_S * 1000;
  for (const l of leases) {
    let aliveUntil = l.granted + ttlMs;
    for (const r of l.rounds) {
      // the answer, not the request, must come before the lease could expire: a keep-alive held up on its way (a
      // partitioned member forwarding it) may reach the leader after the expiry, and "gone" is then right
      if (r.ttl === 0 && r.answered < aliveUntil) {
        problems.push(
          `lease ${l.id}: a keep-alive answered ${(aliveUntil - r.answered).toFixed(0)} ms before the lease could ` +
            `expire that it is gone`,
        );
        break;
      }
      if (r.ttl > 0) aliveUntil = Math.max(aliveUntil, r.sent + ttlMs);
      if (r.read !== undefined && !r.read.exists && r.read.ret < aliveUntil) {
        problems.push(
          `lease ${l.id}: its key ${l.key} was gone ${(aliveUntil - r.read.ret).toFixed(0)} ms before ` +
            `the lease could expire, its keep-alives answered`,
        );
        break;
      }
    }
  }
  return problems;
}

/** The lessor's 500 ms turn, the revocation's round through raft, and a loaded machine (CI runs tests in parallel). */
const SLACK_MS = 3000;

/**
 * Once every lease had its TTL, two election timeouts (a leader change may extend a lease by one) and SLACK_MS to go,
 * no leased key may be left. Waits for that moment, then reads.
 */
export async function checkExpired(
  cluster: FaultCluster,
  leases: LeaseRecord[],
  electionTimeoutMs: number,
): Promise<string[]> {
  const lastAlive = Math.max(0, ...leases.map((l) => Math.max(l.granted, ...l.rounds.map((r) => r.sent))));
  const due = lastAlive + LEASE_TTL_S * 1000 + 2 * electionTimeoutMs + SLACK_MS;
  await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
  const end = Buffer.from(PREFIX);
  end[end.length - 1]++;
  const got = await gateway(cluster.endpoint(cluster.nodes[0]), "/v3/kv/range", {
    key: Buffer.from(PREFIX).toString("base64"),
    range_end: end.toString("base64"),
  }, 10_000);
  return (got.kvs ?? []).map((kv: { key: string }) =>
    `key ${Buffer.from(kv.key, "base64").toString()} outlived its lease`
  );
}
