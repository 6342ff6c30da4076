// clientv3's WithRequireLeader (gRPC metadata `hasleader: true`), as etcd's v3rpc interceptors honour it: a call
// that requires a leader fails at once with "etcdserver: no leader" while the member has none, and a stream that
// required one is ended with that error once the member has been without a leader for three election timeouts
// (etcd's monitorLeader: reconnecting a stream costs more than refusing a new call, so it waits longer).
export const REQUIRE_LEADER_KEY = "hasleader";
/** etcd's maxNoLeaderCnt. */
const MAX_NO_LEADER_COUNT = 3;

/** Whether a call's metadata requires a leader. */
export function requiresLeader(header: Headers): boolean {
  return header.get(REQUIRE_LEADER_KEY) === "true";
}

export class LeaderMonitor {
  readonly #lost = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #noLeaderCount = 0;

  constructor(private readonly hasLeader: () => boolean, private readonly electionMs: number) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#noLeaderCount = this.hasLeader() ? 0 : this.#noLeaderCount + 1;
      if (this.#noLeaderCount < MAX_NO_LEADER_COUNT) return;
      const lost = [...this.#lost];
      this.#lost.clear();
      for (const cb of lost) cb();
    }, this.electionMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Calls `cb` once, when the member has been long without a leader; the returned function unregisters it. */
  onLost(cb: () => void): () => void {
    this.#lost.add(cb);
    return () => this.#lost.delete(cb);
  }
}
