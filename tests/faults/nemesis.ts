// The nemesis: faults chosen by a seed, one at a time with quiet gaps between them, so a quorum survives each and the
// cluster must ride it out: kill -9 and restart from the data dir (a quarter of the kills keep the member down while
// the others snapshot four times, so that it catches up by a snapshot, maybe while it replays its own backend);
// SIGSTOP past the election timeout, then SIGCONT;
// a member cut off from its peers both ways; its messages to one peer lost (a one-way cut); 30% of its messages lost
// both ways; its messages held back 50-300 ms; the member removed, wiped and added back as a new one. The leader is
// the target half of the time. Each fault is logged with its times for the report.
import { Rand } from "../../raft/rand.ts";
import type { FaultCluster, Node } from "./cluster.ts";

export const FAULT_KINDS = ["kill", "pause", "partition", "one-way", "lossy", "delay", "replace"] as const;
export type FaultKind = typeof FAULT_KINDS[number];

/** A long kill's most: the others may write too slowly for four snapshots. */
const LONG_KILL_MAX_MS = 20_000;

export interface FaultEvent {
  kind: FaultKind;
  node: string;
  leader: boolean;
  /** the link rules set on the member, for link faults; for a long kill, what it waited for */
  rules?: string[];
  /** ms since the run started */
  start: number;
  end: number;
}

export interface NemesisOptions {
  rand: () => number;
  /** The members' election timeout: pauses last 1.2-3x it, so the others elect a new leader meanwhile. */
  electionTimeoutMs: number;
  /** Quiet time between faults, ms. */
  gapMs: [number, number];
}

/** raft's seeded PRNG as a function (one stream per purpose, so the fault schedule depends on the seed alone). */
export function seededRandom(seed: number): () => number {
  const r = new Rand(seed >>> 0);
  return () => r.float();
}

export class Nemesis {
  readonly faults: FaultEvent[] = [];
  /**
   * What ended the faults early (a fault's own step failed, e.g. a membership change not answered), with the end of
   * each member's log then: a failed run.
   */
  failure: string | undefined;
  #stopped = false;
  #done: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #t0 = performance.now();

  constructor(private readonly cluster: FaultCluster, private readonly opts: NemesisOptions) {}

  start(): void {
    // kept, not thrown: the run goes on to its checks, and the report carries it with the members' logs
    this.#done = this.#run().catch((e) => {
      this.failure = [
        String(e),
        ...this.cluster.nodes.map((n) =>
          `${n.name}:\n${n.member?.log().trimEnd().split("\n").slice(-40).join("\n") ?? "(down)"}`
        ),
      ].join("\n");
    });
  }

  /** Ends the current fault (the member restarted or resumed) and stops. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#done;
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    const { rand, gapMs, electionTimeoutMs } = this.opts;
    while (!this.#stopped) {
      await this.#sleep(gapMs[0] + rand() * (gapMs[1] - gapMs[0]));
      if (this.#stopped) return;
      const kind = FAULT_KINDS[Math.floor(rand() * FAULT_KINDS.length)];
      const onLeader = rand() < 0.5;
      const pick = rand(), other = rand(), amount = rand(), length = rand();
      const leader = onLeader ? await this.cluster.leader() : undefined;
      const nodes = this.cluster.nodes;
      const target: Node = leader ?? nodes[Math.floor(pick * nodes.length)];
      const event: FaultEvent = { kind, node: target.name, leader: leader !== undefined, start: this.#now(), end: 0 };
      this.faults.push(event);
      const lasting = electionTimeoutMs * (1.2 + length * 1.8);
      if (kind === "replace") {
        await this.cluster.replace(target);
      } else if (kind === "kill") {
        const others = nodes.filter((n) => n !== target);
        const saved = others.map((n) => this.cluster.snapshotsSavedBy(n));
        await this.cluster.kill(target);
        if (other < 0.25) {
          event.rules = ["down through 4 snapshots"];
          // the snapshots are every 2000 entries, the log kept 5000 behind: past 4 its next entries are gone
          const deadline = performance.now() + LONG_KILL_MAX_MS;
          const past = () => others.some((n, i) => this.cluster.snapshotsSavedBy(n) >= saved[i] + 4);
          while (!this.#stopped && !past() && performance.now() < deadline) await this.#sleep(200);
        } else await this.#sleep(300 + amount * 1700);
        await this.cluster.startNode(target);
      } else if (kind === "pause") {
        this.cluster.pause(target);
        await this.#sleep(lasting);
        this.cluster.resume(target);
      } else {
        const peers = nodes.filter((n) => n !== target);
        const rules = kind === "partition"
          ? ["drop-to *", "drop-from *"]
          : kind === "one-way"
          ? [`drop-to ${this.cluster.hexId(peers[Math.floor(other * peers.length)])}`]
          : kind === "lossy"
          ? ["drop-to * 0.3", "drop-from * 0.3"]
          : [`delay-to * ${Math.round(50 + amount * 250)}`];
        event.rules = rules;
        this.cluster.setLinks(target, rules);
        await this.#sleep(lasting);
        this.cluster.setLinks(target, []);
      }
      event.end = this.#now();
    }
  }

  #now(): number {
    return Math.round(performance.now() - this.#t0);
  }
}
