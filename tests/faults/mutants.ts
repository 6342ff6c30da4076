// The checkers' teeth: deliberate bugs, each applied to a copy of the tree, that a fault run must catch. A mutant
// not caught means the suite would let that bug through.
import { repoRoot } from "../e2e/harness.ts";

export interface Mutant {
  name: string;
  /** What should catch it. */
  expect: string;
  file: string;
  /** Each `from` replaced with its `to`; each must be in the file once. */
  edits: { from: string; to: string }[];
}

const PUT = `{ $typeName: "etcdserverpb.InternalRaftRequest", ID: 0n, put: req }`;

export const MUTANTS: Mutant[] = [
  {
    name: "follower-local-reads",
    expect: "linearizability (a follower behind answers a linearizable read from its own state)",
    file: "server/etcdserver.ts",
    edits: [{
      from: "if (!req.serializable) await this.linearizableReadNotify();",
      to: "if (!req.serializable && this.raft.rawNode.isLeader()) await this.linearizableReadNotify();",
    }],
  },
  {
    name: "ack-before-commit",
    expect: "linearizability and lost writes (a put answered as soon as it is proposed)",
    file: "server/etcdserver.ts",
    edits: [{
      from: `return this.propose(${PUT}) as Promise<PutResponse>;`,
      to: `this.propose(${PUT}).catch(() => {});
    return Promise.resolve(this.withHeader({ $typeName: "etcdserverpb.PutResponse" } as PutResponse));`,
    }],
  },
  {
    name: "drop-watch-event",
    expect: "the watch checks (a live watcher misses every 500th revision)",
    file: "mvcc/watchable_store.ts",
    edits: [{
      from: "if (rev >= w.minRev) deliver(w, events ??= [toEvent(kv)]);",
      to: "if (rev >= w.minRev && rev % 500 !== 0) deliver(w, events ??= [toEvent(kv)]);",
    }],
  },
  {
    name: "follower-expires-leases",
    expect: "the lease checks (followers count leases down from their grant, never hearing of keep-alives)",
    file: "server/lease/lessor.ts",
    edits: [
      { from: "if (this.#primary) {\n      this.#refresh(l, 0);", to: "if (true) {\n      this.#refresh(l, 0);" },
      { from: "if (!this.#primary) return out;\n    const now = this.#now();", to: "const now = this.#now();" },
    ],
  },
];

/** The tree's sources copied to a temp dir with the mutant applied (node_modules linked); returns its main.ts. */
export async function mutantTree(m: Mutant): Promise<{ mainTs: string; remove: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: `detcd-mutant-${m.name}-` });
  for (const entry of ["main.ts", "deno.json", "deno.lock", "server", "mvcc", "raft", "wal", "rpc"]) {
    const out = await new Deno.Command("cp", { args: ["-r", `${repoRoot}${entry}`, `${dir}/`] }).output();
    if (!out.success) throw new Error(`copying ${entry}: ${new TextDecoder().decode(out.stderr)}`);
  }
  await Deno.symlink(`${repoRoot}node_modules`, `${dir}/node_modules`);
  const path = `${dir}/${m.file}`;
  let text = await Deno.readTextFile(path);
  for (const { from, to } of m.edits) {
    if (text.split(from).length !== 2) throw new Error(`mutant ${m.name}: the code to change is not in ${m.file} once`);
    text = text.replace(from, to);
  }
  await Deno.writeTextFile(path, text);
  return { mainTs: `${dir}/main.ts`, remove: () => Deno.remove(dir, { recursive: true }) };
}
