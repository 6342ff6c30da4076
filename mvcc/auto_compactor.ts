/**
 * Automatic compaction, as etcd's v3compactor (--auto-compaction-mode / --auto-compaction-retention).
 *
 * periodic: keeps `retention` of history. Every retention/10 (at most 6 min) it samples the revision; once a full
 * retention period has passed since the last success (then every min(retention, 1h)), it compacts at the revision
 * sampled `retention` ago.
 * revision: every 5 minutes compacts at currentRev - retention, unless that is <= 0 or was already done.
 *
 * The compaction itself goes through the `compact` callback (the server routes it through raft); a "revision has
 * been compacted" failure counts as success, like etcd.
 */

export type CompactionMode = "periodic" | "revision";

/** Time source, injectable so tests can drive the compactor without waiting. */
export interface Clock {
  now(): number;
  /** Resolves after ms, or early (without error) when signal aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done);
    }),
};

const HOUR = 3600_000;
/** etcd's revInterval for revision mode. */
export const REVISION_CHECK_INTERVAL = 5 * 60_000;

export interface AutoCompactorOptions {
  mode: CompactionMode;
  /** ms for periodic mode, a number of revisions for revision mode (server/config.ts parseCompactionRetention). */
  retention: number;
  /** The current store revision. */
  rev: () => number;
  /** Requests a compaction; rejects on failure. */
  compact: (rev: number) => Promise<unknown>;
  clock?: Clock;
  onError?: (err: unknown) => void;
}

function isCompactedError(e: unknown): boolean {
  return e instanceof Error && e.message.includes("mvcc: required revision has been compacted");
}

export class AutoCompactor {
  readonly #o: AutoCompactorOptions;
  readonly #clock: Clock;
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #paused = false;

  constructor(opts: AutoCompactorOptions) {
    if (!(opts.retention > 0)) throw new Error("auto compaction retention must be positive");
    this.#o = opts;
    this.#clock = opts.clock ?? realClock;
  }

  start(): void {
    if (this.#loop !== null) return;
    this.#abort = new AbortController();
    this.#loop = this.#o.mode === "periodic"
      ? this.#runPeriodic(this.#abort.signal)
      : this.#runRevision(this.#abort.signal);
  }

  /** Stops the loop; resolves when it has exited. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = null;
  }

  /** While paused (e.g. not the leader) no compaction is requested. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
  }

  async #tryCompact(rev: number): Promise<boolean> {
    try {
      await this.#o.compact(rev);
      return true;
    } catch (e) {
      if (isCompactedError(e)) return true;
      this.#o.onError?.(e);
      return false;
    }
  }

  async #runPeriodic(signal: AbortSignal): Promise<void> {
    const period = this.#o.retention;
    const compactInterval = Math.min(period, HOUR);
    const retryInterval = compactInterval / 10;
    const retentions = Math.floor(period / retryInterval) + 1;
    const revs: number[] = [];
    let lastSuccess = this.#clock.now();
    let baseInterval = period;
    while (!signal.aborted) {
      revs.push(this.#o.rev());
      if (revs.length > retentions) revs.shift(); // revs[0] is the revision one period ago
      await this.#clock.sleep(retryInterval, signal);
      if (signal.aborted) return;
      if (this.#paused) continue;
      if (this.#clock.now() - lastSuccess < baseInterval) continue;
      // The first compaction waits a whole period; later ones every compactInterval.
      baseInterval = compactInterval;
      if (await this.#tryCompact(revs[0])) lastSuccess = this.#clock.now();
    }
  }

  async #runRevision(signal: AbortSignal): Promise<void> {
    let prev = 0;
    while (!signal.aborted) {
      await this.#clock.sleep(REVISION_CHECK_INTERVAL, signal);
      if (signal.aborted) return;
      if (this.#paused) continue;
      const rev = this.#o.rev() - this.#o.retention;
      if (rev <= 0 || rev === prev) continue;
      if (await this.#tryCompact(rev)) prev = rev;
    }
  }
}
