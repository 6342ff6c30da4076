// One fault run: a 3-member cluster, the workload on every member while the nemesis injects faults, then the faults
// stop and the checks run: the members converge (same HashKV at the same revision), every acknowledged write is in
// the final state or superseded, and the history is linearizable. A failure names the seed, the faults applied and
// the offending history.
import { FaultCluster } from "./cluster.ts";
import { connectUnary, gateway, RequestError, Workload, type WorkloadCounts } from "./client.ts";
import { ResumingWatcher, type StoreEvent } from "./watcher.ts";
import { Compactor } from "./compactor.ts";
import { checkWatcher, writesMissingFromHistory } from "./watch_checks.ts";
import { checkExpired, checkKeptAlive, LeaseWorkload } from "./leases.ts";
import { dropUnapplied, formatHistory, HistoryRecorder, type Operation } from "./history.ts";
import {
  checkLinearizable,
  type CheckResult,
  type FinalValue,
  formatResult,
  lostWrites,
  registerModel,
} from "./linearizability.ts";
import { type FaultEvent, Nemesis, seededRandom } from "./nemesis.ts";
import { Buffer } from "node:buffer";

export interface FaultRunOptions {
  seed: number;
  durationMs: number;
  keys?: number;
  clientsPerMember?: number;
  /** The build to run (a mutant's main.ts); default: this tree's. */
  mainTs?: string;
  /** Progress lines (faults as they end, phases). */
  log?: (line: string) => void;
}

export interface FaultRunReport {
  seed: number;
  durationMs: number;
  counts: WorkloadCounts;
  faults: FaultEvent[];
  /** undefined when the members did not converge (then `convergence` says why) */
  converged: { revision: number; hash: number } | undefined;
  convergence: string;
  lost: Operation[];
  /** acknowledged writes not in the store's history at their revision */
  missing: Operation[];
  watch: WatchSummary;
  /** compactions made during the run (each 100 revisions behind the head), watchers behind them canceled */
  compactions: number;
  /** snapshots followers installed (some when restarted, superseding the replay of their own backend) */
  snapshots: { installed: number; supersedingReplay: number };
  leases: { granted: number; keepAlives: number; problems: string[] };
  linearizability: CheckResult;
  /** The nemesis's failure (see Nemesis.failure); undefined when every fault ran. */
  nemesisFailure: string | undefined;
  passed: boolean;
}

const ELECTION_TIMEOUT_MS = 1000; // detcd's default, as etcd's
const REQUEST_TIMEOUT_MS = 3000;
const HASH_KV = "etcdserverpb.Maintenance/HashKV";

export async function runFaults(opts: FaultRunOptions): Promise<FaultRunReport> {
  const log = opts.log ?? (() => {});
  const keys = opts.keys ?? 8;
  const cluster = await FaultCluster.start(3, opts.mainTs);
  try {
    await cluster.identify();
    const history = new HistoryRecorder();
    const workload = new Workload(cluster, history, {
      keys,
      clientsPerMember: opts.clientsPerMember ?? 2,
      timeoutMs: REQUEST_TIMEOUT_MS,
      rand: seededRandom(opts.seed ^ 0x5bd1e995),
    });
    const nemesis = new Nemesis(cluster, {
      rand: seededRandom(opts.seed),
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      gapMs: [500, 2000],
    });
    const leases = new LeaseWorkload(cluster, seededRandom(opts.seed ^ 0x27d4eb2f), REQUEST_TIMEOUT_MS);
    const compactor = new Compactor(cluster, seededRandom(opts.seed ^ 0x1b873593), REQUEST_TIMEOUT_MS);
    // a watcher on each member from the first revision, resuming across the faults
    const watchers = cluster.nodes.map((n) => new ResumingWatcher(n.name, () => cluster.endpoint(n), "reg/", 1));
    // and one that keeps falling behind, so that compactions cancel it
    const first = cluster.nodes[0];
    watchers.push(new ResumingWatcher("laggard", () => cluster.endpoint(first), "reg/", 1, 3000));
    for (const w of watchers) w.start();
    log(`seed ${opts.seed}: ${opts.durationMs / 1000} s of faults on ${cluster.nodes.length} members`);
    workload.start();
    leases.start();
    compactor.start();
    nemesis.start();
    await new Promise((r) => setTimeout(r, opts.durationMs));
    await nemesis.stop();
    const nemesisFailure = nemesis.failure;
    await compactor.stop();
    // the cluster whole again, the clients work a little longer: the faults' effects must heal
    await new Promise((r) => setTimeout(r, 1000));
    await workload.stop();
    await leases.stop();
    log(`faults: ${nemesis.faults.length}, operations: ${JSON.stringify(workload.counts)}`);

    // the leases let go expire first: their revocations are the last writes, so the history ends where they converge
    const leaseProblems = [
      ...checkKeptAlive(leases.leases),
      ...await checkExpired(cluster, leases.leases, ELECTION_TIMEOUT_MS),
    ];
    const conv = await converge(cluster);
    log(conv.result !== undefined ? `converged at revision ${conv.result.revision}` : `not converged: ${conv.detail}`);
    const final = new Map<string, FinalValue>();
    const node = cluster.nodes[0];
    for (let i = 0; i < keys; i++) {
      const key = Workload.keyName(i);
      const p = history.invoke(-1, key, { op: "read" });
      const r = await gateway(
        cluster.endpoint(node),
        "/v3/kv/range",
        { key: Buffer.from(key).toString("base64") },
        10_000,
      );
      const kv = r.kvs?.[0];
      const value = kv === undefined ? null : Buffer.from(kv.value ?? "", "base64").toString();
      p.ok({ value });
      if (kv !== undefined && value !== null) final.set(key, { value, modRevision: Number(kv.mod_revision) });
    }
    // the store's history settles the writes whose outcome the clients never learned
    if (conv.result !== undefined) await compactor.collect(cluster.endpoint(node), conv.result.revision);
    const events = compactor.history;
    log(`the store's history: ${events.length} events`);
    const ops = dropUnapplied(history.operations(), new Set(events.map((e) => e.value)));
    const lost = lostWrites(ops, final);
    const missing = writesMissingFromHistory(ops, events);
    const linearizability = checkLinearizable(ops, registerModel);
    const watch = await settleWatchers(watchers, events);
    return {
      seed: opts.seed,
      durationMs: opts.durationMs,
      counts: workload.counts,
      faults: nemesis.faults,
      converged: conv.result,
      convergence: conv.detail,
      lost,
      missing,
      watch,
      compactions: compactor.compactions.length,
      snapshots: cluster.snapshotCounts(),
      leases: {
        granted: leases.leases.length,
        keepAlives: leases.leases.reduce((n, l) => n + l.rounds.length, 0),
        problems: leaseProblems,
      },
      linearizability,
      nemesisFailure,
      passed: nemesisFailure === undefined && conv.result !== undefined && lost.length === 0 && missing.length === 0 &&
        watch.problems.length === 0 && leaseProblems.length === 0 && linearizability.verdict === "ok",
    };
  } finally {
    await cluster.stop();
  }
}

export interface WatchSummary {
  watchers: number;
  events: number;
  /** streams opened again after one broke */
  resumptions: number;
  /** watches canceled because their start revision was compacted */
  compacted: number;
  problems: string[];
}

/** Lets each watcher reach the end of its keys' history (up to 30 s), stops them, and checks what they saw. */
async function settleWatchers(watchers: ResumingWatcher[], history: StoreEvent[]): Promise<WatchSummary> {
  // each watcher's share of the history, and the last revision in it
  const shares = watchers.map((w) => history.filter((e) => e.key.startsWith(w.prefix)));
  const last = shares.map((h) => h.at(-1)?.modRevision ?? 0);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && watchers.some((w, i) => w.seenRevision < last[i])) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all(watchers.map((w) => w.stop()));
  const problems: string[] = [];
  for (const [i, w] of watchers.entries()) {
    if (w.seenRevision < last[i]) problems.push(`${w.name}: saw up to revision ${w.seenRevision} of ${last[i]}`);
    problems.push(...checkWatcher(w, shares[i]));
  }
  return {
    watchers: watchers.length,
    events: watchers.reduce((n, w) => n + w.responses.reduce((m, r) => m + r.events.length, 0), 0),
    resumptions: watchers.reduce((n, w) => n + w.streams - 1, 0),
    compacted: watchers.reduce((n, w) => n + w.responses.filter((r) => r.compactRevision !== undefined).length, 0),
    problems,
  };
}

/** Waits (up to 60 s) until every member is at one revision with one HashKV there. */
async function converge(
  cluster: FaultCluster,
): Promise<{ result?: { revision: number; hash: number }; detail: string }> {
  const deadline = Date.now() + 60_000;
  let detail = "";
  while (Date.now() < deadline) {
    try {
      const revs = await Promise.all(
        cluster.nodes.map(async (n) =>
          Number((await gateway(cluster.endpoint(n), "/v3/maintenance/status", {}, 2000)).header.revision)
        ),
      );
      if (revs.every((r) => r === revs[0])) {
        const hashes = await Promise.all(
          cluster.nodes.map(async (n) =>
            Number(
              (await connectUnary(cluster.endpoint(n), HASH_KV, { revision: String(revs[0]) }, 2000)).hash ?? 0,
            )
          ),
        );
        if (hashes.every((h) => h === hashes[0])) return { result: { revision: revs[0], hash: hashes[0] }, detail: "" };
        detail = `hashes differ at revision ${revs[0]}: ${hashes.join(", ")}`;
      } else detail = `revisions differ: ${revs.join(", ")}`;
    } catch (e) {
      if (!(e instanceof RequestError)) throw e;
      detail = e.message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { detail };
}

export function formatReport(r: FaultRunReport): string {
  const lines = [
    `seed ${r.seed}, ${r.durationMs / 1000} s: ${r.passed ? "PASSED" : "FAILED"}`,
    ...(r.nemesisFailure === undefined ? [] : [`the faults ended early: ${r.nemesisFailure}`]),
    `operations: ${r.counts.ok} answered, ${r.counts.unknown} unknown, ${r.counts.notApplied} refused`,
    `faults (${r.faults.length}): ${
      r.faults.map((f) =>
        `${f.kind} ${f.node}${f.leader ? " (leader)" : ""}${f.rules ? ` [${f.rules.join(", ")}]` : ""} ` +
        `${f.start}-${f.end} ms`
      ).join("; ")
    }`,
    r.converged !== undefined
      ? `converged: revision ${r.converged.revision}, hash ${r.converged.hash} on every member`
      : `NOT converged: ${r.convergence}`,
    `acknowledged writes lost: ${r.lost.length}${r.lost.length > 0 ? "\n" + formatHistory(r.lost) : ""}`,
    `acknowledged writes missing from the store's history: ${r.missing.length}${
      r.missing.length > 0 ? "\n" + formatHistory(r.missing) : ""
    }`,
    `watch: ${r.watch.watchers} watchers, ${r.watch.events} events, ${r.watch.resumptions} resumptions, ` +
    `${r.compactions} compactions, ${r.watch.compacted} watches canceled by one, ` +
    `${r.watch.problems.length} problems${r.watch.problems.map((p) => "\n  " + p).join("")}`,
    `snapshots: ${r.snapshots.installed} installed by followers, ${r.snapshots.supersedingReplay} superseding a ` +
    `restart's replay`,
    `leases: ${r.leases.granted} granted, ${r.leases.keepAlives} keep-alives answered, ` +
    `${r.leases.problems.length} problems${r.leases.problems.map((p) => "\n  " + p).join("")}`,
    formatResult(r.linearizability),
  ];
  return lines.join("\n");
}
