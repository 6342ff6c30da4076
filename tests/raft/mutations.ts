// Mutation testing of the simulator: known-bad variants of raft/ (patched copies in a
// temp dir, never the files on disk) or of the server driving it. The simulator only
// earns trust if it catches every one of them on its own.

import { loadLib, type RaftLib, runSeed, type SimOptions, type SimResult } from "./simulator.ts";

interface Patch {
  file: string;
  from: string;
  to: string;
}

export interface Mutation {
  id: string;
  what: string;
  patches: Patch[];
  /** Breaks the driver (server contract) instead of the library. */
  driver?: Omit<SimOptions, "lib">;
}

export const MUTATIONS: Mutation[] = [
  {
    id: "a",
    what: "leader commits old-term entries by counting replicas (figure 8)",
    patches: [{
      file: "log.ts",
      from: "if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {",
      to: "if (maxIndex > this.committed) {",
    }],
  },
  {
    id: "b",
    what: "vote granted without the up-to-date log check",
    patches: [{
      file: "raft.ts",
      from: "if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {",
      to: "if (canVote) {",
    }],
  },
  {
    id: "c1",
    what: "vote forgotten on restart (two votes in one term)",
    patches: [{ file: "raft.ts", from: "this.vote = hs.vote;", to: "this.vote = NONE;" }],
  },
  {
    id: "c2",
    what: "vote granted to a second candidate of the same term",
    patches: [{
      file: "raft.ts",
      from: "this.vote === m.from || (this.vote === NONE && this.lead === NONE) ||",
      to: "this.vote === m.from || this.lead === NONE ||",
    }],
  },
  {
    id: "d",
    what: "follower appends without the prevLogTerm check",
    patches: [{
      file: "log.ts",
      from: "if (!this.matchTerm(index, logTerm)) return -1;",
      to: "if (index > this.lastIndex()) return -1;",
    }],
  },
  {
    id: "e",
    what: "leader overwrites its own uncommitted tail",
    patches: [{
      file: "raft.ts",
      from: "const li = this.raftLog.lastIndex();\n    for (let i = 0; i < es.length; i++) {",
      to: "const li = this.raftLog.committed;\n    for (let i = 0; i < es.length; i++) {",
    }],
  },
  {
    id: "f",
    what: "entries applied beyond the commit index",
    patches: [
      {
        file: "log.ts",
        from: "if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);",
        to: "if (this.lastIndex() + 1 > off) return this.slice(off, this.lastIndex() + 1, this.maxNextEntsSize);",
      },
      { file: "log.ts", from: "return this.committed + 1 > Math.max(", to: "return this.lastIndex() + 1 > Math.max(" },
      { file: "log.ts", from: "if (this.committed < i || i < this.applied) {", to: "if (i < this.applied) {" },
    ],
  },
  {
    id: "g",
    what: "PreVote bumps the pre-candidate's term",
    patches: [{
      file: "raft.ts",
      from: "that's the whole point of PreVote.\n    this.prs.resetVotes();",
      to: "that's the whole point of PreVote.\n    this.reset(this.term + 1);",
    }],
  },
  {
    id: "h",
    what: "CheckQuorum off while lease-based reads are still served",
    patches: [
      { file: "config.ts", from: "checkQuorum: c.checkQuorum ?? false,", to: "checkQuorum: false," },
    ],
  },
  {
    id: "i",
    what: "follower acknowledges (sends) before its Ready is persisted",
    patches: [],
    driver: { sendBeforePersist: true },
  },
];

/** A copy of raft/ with m's patches applied, loaded as a RaftLib. */
export async function mutantLib(m: Mutation): Promise<RaftLib> {
  const src = new URL("../../raft/", import.meta.url);
  const dir = await Deno.makeTempDir({ prefix: `raft-mutant-${m.id}-` });
  try {
    for await (const f of Deno.readDir(src)) {
      if (!f.isFile || !f.name.endsWith(".ts")) continue;
      let text = await Deno.readTextFile(new URL(f.name, src));
      for (const p of m.patches.filter((p) => p.file === f.name)) {
        // Exactly one match, or the mutation silently stopped meaning anything.
        if (text.split(p.from).length !== 2) throw new Error(`mutation ${m.id}: "${p.from}" not once in ${p.file}`);
        text = text.replace(p.from, p.to);
      }
      await Deno.writeTextFile(`${dir}/${f.name}`, text);
    }
    return await loadLib(new URL(`file://${dir}/`));
  } finally {
    // Modules stay loaded once imported.
    await Deno.remove(dir, { recursive: true });
  }
}

export interface Hunt {
  caught?: SimResult;
  seeds: number;
}

/** Runs seeds from..from+count-1 against the mutant; stops at the first failure. */
export function hunt(m: Mutation, lib: RaftLib, from: number, count: number): Hunt {
  for (let s = from; s < from + count; s++) {
    const r = runSeed(s, undefined, undefined, { ...m.driver, lib });
    if (!r.ok) return { caught: r, seeds: s - from + 1 };
  }
  return { seeds: count };
}
