// The cluster under test: three detcd members as real processes on loopback, from the flags three etcd members would
// take, with the faults the nemesis applies: kill -9 and restart from the data dir, SIGSTOP and SIGCONT, and link
// faults through each member's DETCD_LINK_FAULTS rules file (server/peer/link_faults.ts).
import { clusterFlags, freePort, type Member, startMember, tempDir } from "../e2e/harness.ts";
import { gateway, RequestError } from "./client.ts";

const SNAPSHOT_COUNT = 2000;

/** How many lines of a member's log carry message `msg`. */
function logCount(log: string, msg: string): number {
  return log.split(`"msg":${JSON.stringify(msg)}`).length - 1;
}

export interface Node {
  name: string;
  client: number;
  peer: number;
  dataDir: string;
  /** The member's link fault rules. */
  links: string;
  member?: Member;
  paused: boolean;
  /** Known once the cluster is up (identify()). */
  memberId?: bigint;
}

/**
 * A membership change, again while --strict-reconfig-check refuses it ("unhealthy cluster": the members have not all
 * been connected for 5 s, as after a start or a fault) or its outcome is unknown (it timed out, or found no leader, as
 * under a fault), for up to 30 s. A retried change may find itself already made: `done` turns that answer into the
 * result.
 */
async function reconfigure<T>(fn: () => Promise<T>, done: (e: RequestError) => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (let retried = false;; retried = true) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof RequestError)) throw e;
      const made = retried ? await done(e) : undefined;
      if (made !== undefined) return made;
      if (!/unhealthy cluster|not enough started|timed out|no leader/.test(e.message)) throw e;
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export class FaultCluster {
  /** Snapshots installed by the members stopped so far, counted from their logs (see snapshotCounts()). */
  readonly #snapshots = { installed: 0, supersedingReplay: 0 };

  private constructor(
    readonly nodes: Node[],
    private readonly cluster: string,
    private readonly mainTs: string | undefined,
  ) {}

  /** Starts `size` members of the build at `mainTs` (default: this tree) together (none is ready before a quorum). */
  static async start(size = 3, mainTs?: string): Promise<FaultCluster> {
    const nodes: Node[] = [];
    for (let i = 1; i <= size; i++) {
      const dir = await tempDir();
      nodes.push({
        name: `f${i}`,
        client: await freePort(),
        peer: await freePort(),
        dataDir: `${dir}/f${i}.etcd`,
        links: `${dir}/f${i}.links`,
        paused: false,
      });
    }
    const c = new FaultCluster(nodes, nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(","), mainTs);
    await Promise.all(nodes.map((n) => c.startNode(n)));
    return c;
  }

  endpoint(n: Node): string {
    return `127.0.0.1:${n.client}`;
  }

  /** Starts n's member; `join`: as a member just added to the running cluster (its --initial-cluster). */
  async startNode(n: Node, join?: string): Promise<void> {
    const args = [
      ...clusterFlags(n, join ?? this.cluster, "faults"),
      `--initial-cluster-state=${join === undefined ? "new" : "existing"}`,
      // snapshots through a run (the log compacted 5000 entries behind each): a member that falls that far behind or
      // joins catches up by one, maybe while it restarts
      `--snapshot-count=${SNAPSHOT_COUNT}`,
    ];
    n.member = await startMember({
      dataDir: n.dataDir,
      clientPort: n.client,
      args,
      env: { DETCD_LINK_FAULTS: n.links },
      mainTs: this.mainTs,
    });
  }

  /**
   * Membership churn: n is removed from the cluster (it stops itself, as etcd's removed members do), its data is
   * wiped, and it is added back as a new member (a new ID) and started with --initial-cluster-state existing.
   */
  async replace(n: Node): Promise<void> {
    const via = this.nodes.find((m) => m !== n && m.member !== undefined && !m.paused);
    if (via === undefined || n.memberId === undefined) throw new Error(`no member to replace ${n.name} through`);
    const ep = this.endpoint(via);
    const id = n.memberId;
    await reconfigure(
      () => gateway(ep, "/v3/cluster/member/remove", { ID: String(id) }, 10_000),
      (e) => Promise.resolve(/member not found/.test(e.message) ? {} : undefined),
    );
    await this.#stopMember(n);
    await Deno.remove(n.dataDir, { recursive: true });
    const peerUrl = `http://127.0.0.1:${n.peer}`;
    type Members = { ID: string; name?: string; peerURLs: string[] }[];
    const members: Members = await reconfigure(
      async () => {
        const added = await gateway(ep, "/v3/cluster/member/add", { peerURLs: [peerUrl] }, 10_000);
        n.memberId = BigInt(added.member.ID);
        return added.members;
      },
      async (e) => {
        if (!/Peer URLs already exists/.test(e.message)) return undefined;
        const list: Members = (await gateway(ep, "/v3/cluster/member/list", {}, 10_000)).members;
        n.memberId = BigInt(list.find((x) => x.peerURLs.includes(peerUrl))!.ID);
        return list;
      },
    );
    const cluster = members.map((x) => `${BigInt(x.ID) === n.memberId ? n.name : x.name}=${x.peerURLs[0]}`).join(",");
    await this.startNode(n, cluster);
  }

  /** SIGTERM (a removed member may have stopped already), SIGKILL if it lingers 10 s. */
  async #stopMember(n: Node): Promise<void> {
    const m = n.member;
    n.member = undefined;
    if (m === undefined) return;
    const t = setTimeout(() => m.kill(), 10_000);
    await m.stop();
    clearTimeout(t);
    this.#countSnapshots(m);
  }

  #countSnapshots(m: Member, into = this.#snapshots): void {
    const log = m.log();
    into.installed += logCount(log, "applied snapshot");
    into.supersedingReplay += logCount(log, "skipped restoring the backend: a leader's snapshot replaces it");
  }

  /** The snapshots n's member has saved since it started (from its log; 0 when it is not running). */
  snapshotsSavedBy(n: Node): number {
    return n.member === undefined ? 0 : logCount(n.member.log(), "saved snapshot");
  }

  /** Snapshots followers installed so far, and how many of them superseded the replay of a restarted member's backend. */
  snapshotCounts(): { installed: number; supersedingReplay: number } {
    const total = { ...this.#snapshots };
    for (const n of this.nodes) if (n.member !== undefined) this.#countSnapshots(n.member, total);
    return total;
  }

  /** kill -9: the process is gone with whatever it had not persisted. */
  async kill(n: Node): Promise<void> {
    if (n.paused) this.resume(n);
    const m = n.member;
    n.member = undefined;
    if (m === undefined) return;
    await m.kill();
    this.#countSnapshots(m);
  }

  /** Sets n's link faults (rules as link_faults.ts reads them; none: healthy). The member applies them within 100 ms. */
  setLinks(n: Node, rules: string[]): void {
    Deno.writeTextFileSync(n.links, rules.map((r) => r + "\n").join(""));
  }

  /** The hex member ID link fault rules name a member by. */
  hexId(n: Node): string {
    if (n.memberId === undefined) throw new Error(`${n.name}: not identified yet`);
    return n.memberId.toString(16);
  }

  pause(n: Node): void {
    n.member?.child.kill("SIGSTOP");
    n.paused = true;
  }

  resume(n: Node): void {
    n.member?.child.kill("SIGCONT");
    n.paused = false;
  }

  /** The member the others follow, asked of each running member; undefined when none answers. */
  async leader(): Promise<Node | undefined> {
    for (const n of this.nodes) {
      if (n.member === undefined || n.paused) continue;
      try {
        const s = await gateway(this.endpoint(n), "/v3/maintenance/status", {}, 1000);
        const leader = BigInt(s.leader ?? 0);
        const found = this.nodes.find((m) => m.member !== undefined && m.memberId === leader);
        if (found !== undefined) return found;
      } catch { /* ask the next */ }
    }
    return undefined;
  }

  /** Learns each member's ID (for leader()). */
  async identify(): Promise<void> {
    for (const n of this.nodes) {
      const s = await gateway(this.endpoint(n), "/v3/maintenance/status", {}, 5000);
      n.memberId = BigInt(s.header.member_id);
    }
  }

  /**
   * Resumes and stops every member (SIGTERM, then SIGKILL if it lingers) and removes their directories (a run ended
   * by Deno.exit() never reaches the harness's unload clean-up).
   */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      if (n.paused) this.resume(n);
      await this.#stopMember(n);
      await Deno.remove(n.dataDir.slice(0, n.dataDir.lastIndexOf("/")), { recursive: true }).catch(() => {});
    }));
  }
}
