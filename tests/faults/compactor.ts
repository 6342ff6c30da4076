// Compactions during a fault run, while watchers may be behind (resuming, or a laggard): every 1-2 s the store is
// compacted to 100 revisions ago. The history the checks compare against is collected before
// each compaction, from the revision after the last one collected, so the whole history survives the compactions.
import type { FaultCluster } from "./cluster.ts";
import { gateway } from "./client.ts";
import { type StoreEvent, watchHistory } from "./watcher.ts";

/** Revisions left behind a compaction. */
const KEEP_REVISIONS = 100;

export class Compactor {
  /** The store's history from revision 2 up to `collected`. */
  readonly history: StoreEvent[] = [];
  collected = 1;
  compactions: number[] = [];
  /** Rounds that found no member to collect from or compact on. */
  skipped = 0;
  #stopped = false;
  #done: Promise<void> | undefined;

  constructor(
    private readonly cluster: FaultCluster,
    private readonly rand: () => number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  /** Collects the history through `revision` from the member at `endpoint`. */
  async collect(endpoint: string, revision: number): Promise<void> {
    if (revision <= this.collected) return;
    const events = await watchHistory(endpoint, this.collected + 1, revision, 30_000);
    this.history.push(...events);
    this.collected = revision;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      await new Promise((r) => setTimeout(r, 1000 + this.rand() * 1000));
      if (this.#stopped) return;
      const n = this.cluster.nodes.find((n) => n.member !== undefined && !n.paused);
      if (n === undefined) continue;
      const ep = this.cluster.endpoint(n);
      try {
        const rev = Number((await gateway(ep, "/v3/maintenance/status", {}, this.timeoutMs)).header.revision);
        const at = rev - KEEP_REVISIONS;
        if (at <= (this.compactions.at(-1) ?? 0)) continue;
        // never compact what is not collected: a failed collection skips this compaction
        await this.collect(ep, at);
        await gateway(ep, "/v3/kv/compaction", { revision: String(at) }, this.timeoutMs);
        this.compactions.push(at);
      } catch {
        // a member down or cut off: no compaction this round (nothing is compacted that was not collected)
        this.skipped++;
      }
    }
  }
}
