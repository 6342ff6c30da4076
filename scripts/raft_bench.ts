// Benchmark: entries/s committed and applied through an in-process 3-node raft
// cluster (MemoryStorage, messages handed over directly), proposals batched.
//   deno run -A scripts/raft_bench.ts [--entries N] [--batch B] [--size BYTES]
import { type Message, RawNode } from "../raft/mod.ts";
import { MemoryStorage } from "../raft/storage.ts";

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

const TOTAL = arg("entries", 1_000_000);
const BATCH = arg("batch", 1000);
const SIZE = arg("size", 64);
const useBatchApi = Deno.args.includes("--propose-batch");

interface N {
  rn: RawNode;
  s: MemoryStorage;
  applied: number;
}

const ids = [1, 2, 3];
const nodes = new Map<number, N>();
for (const id of ids) {
  const s = new MemoryStorage();
  s.setConfState({ voters: ids.map(BigInt), learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
  const rn = new RawNode({
    id: BigInt(id),
    electionTick: 10,
    heartbeatTick: 1,
    storage: s,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
  });
  nodes.set(id, { rn, s, applied: 0 });
}

let inbox: Message[] = [];

function pump(): boolean {
  let did = false;
  for (const n of nodes.values()) {
    if (!n.rn.hasReady()) continue;
    did = true;
    const rd = n.rn.ready();
    if (rd.snapshot) n.s.applySnapshot(rd.snapshot);
    n.s.append(rd.entries);
    if (rd.hardState) n.s.setHardState(rd.hardState);
    for (let i = 0; i < rd.messages.length; i++) inbox.push(rd.messages[i]);
    const ce = rd.committedEntries;
    if (ce.length > 0) n.applied = ce[ce.length - 1].index;
    n.rn.advance(rd);
    // Keep the in-memory log bounded, as a real server's compaction would.
    if (n.applied - n.s.firstIndex() > 100_000) n.s.compact(n.applied - 10_000);
  }
  const msgs = inbox;
  inbox = [];
  for (let i = 0; i < msgs.length; i++) {
    did = true;
    nodes.get(Number(msgs[i].to))!.rn.step(msgs[i]);
  }
  return did;
}

const leader = nodes.get(1)!;
leader.rn.campaign();
while (pump()) { /* elect */ }
if (!leader.rn.isLeader()) throw new Error("no leader");

const payload = new Uint8Array(SIZE);
const batch: Uint8Array[] = new Array(BATCH).fill(payload);
const base = leader.applied;
const target = base + TOTAL;
const heap0 = Deno.memoryUsage().heapUsed;
const t0 = performance.now();
let proposed = 0;
while (proposed < TOTAL) {
  const k = Math.min(BATCH, TOTAL - proposed);
  if (useBatchApi) leader.rn.proposeBatch(k === BATCH ? batch : batch.slice(0, k));
  else for (let i = 0; i < k; i++) leader.rn.propose(payload);
  proposed += k;
  pump();
}
while ([...nodes.values()].some((n) => n.applied < target)) pump();
const secs = (performance.now() - t0) / 1000;
const heap1 = Deno.memoryUsage().heapUsed;
console.log(
  `3-node cluster: ${TOTAL} entries of ${SIZE}B, ${BATCH} proposals per Ready` +
    `${useBatchApi ? " (proposeBatch)" : " (propose each)"}: ${secs.toFixed(2)}s, ` +
    `${Math.round(TOTAL / secs).toLocaleString("en")} entries/s committed on all nodes`,
);
console.log(`heap growth: ${((heap1 - heap0) / TOTAL).toFixed(1)} B/entry (includes the retained log tail)`);
