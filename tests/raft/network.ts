// Test harness in the style of etcd's raft_test.go: Raft instances wired by an
// in-memory network that delivers messages synchronously until quiescent.

import { Raft } from "../../raft/raft.ts";
import type { Config } from "../../raft/config.ts";
import { MemoryStorage } from "../../raft/storage.ts";
import { ErrProposalDropped } from "../../raft/errors.ts";
import { Rand } from "../../raft/rand.ts";
import { type Entry, EntryType, type Message, MessageType, NONE } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";

/** Tests name nodes 1, 2, 3, ...: as numbers or as raft's bigint IDs. */
export type TestId = number | bigint;

export function newTestStorage(voters: TestId[], learners: TestId[] = []): MemoryStorage {
  const s = new MemoryStorage();
  s.setConfState({
    voters: voters.map(BigInt),
    learners: learners.map(BigInt),
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  });
  return s;
}

export function newTestRaft(
  id: TestId,
  election: number,
  heartbeat: number,
  storage: MemoryStorage,
  extra: Partial<Config> = {},
): Raft {
  return new Raft({ id: BigInt(id), electionTick: election, heartbeatTick: heartbeat, storage, ...extra });
}

/** Takes the messages a node produced. */
export function readMessages(r: Raft): Message[] {
  const m = r.msgs;
  r.msgs = [];
  return m;
}

export function ent(term: number, index: number, data = ""): Entry {
  return { term, index, type: EntryType.Normal, data: new TextEncoder().encode(data) };
}

export function msg(type: MessageType, from: TestId, to: TestId, fields: Partial<Message> = {}): Message {
  return { ...newMessage(type, BigInt(to), BigInt(from)), ...fields };
}

export function propMsg(to: TestId, data = "somedata"): Message {
  return msg(MessageType.MsgProp, to, to, { entries: [ent(0, 0, data)] });
}

/** Persists the unstable log, applies committed entries, and returns them (etcd's nextEnts). */
export function nextEnts(r: Raft, s: MemoryStorage): Entry[] {
  const unstable = r.raftLog.unstableEntries().slice();
  s.append(unstable);
  if (unstable.length > 0) {
    const last = unstable[unstable.length - 1];
    r.raftLog.stableTo(last.index, last.term);
  }
  const ents = r.raftLog.nextEnts();
  if (ents.length > 0) r.raftLog.appliedTo(ents[ents.length - 1].index);
  return ents;
}

/** Steps m, treating a dropped proposal like etcd's ignored error. */
function stepQuiet(r: Raft, m: Message): void {
  try {
    r.step(m);
  } catch (e) {
    if (e !== ErrProposalDropped) throw e;
  }
}

export class Network {
  /** null is a black hole: it swallows everything sent to it. */
  peers = new Map<number, Raft | null>();
  storage = new Map<number, MemoryStorage>();
  private dropm = new Map<string, number>();
  private ignorem = new Set<MessageType>();
  /** Returning false drops the message. */
  msgHook: ((m: Message) => boolean) | undefined = undefined;
  private rand = new Rand(1);

  /** peers[i] gets id i+1; undefined makes a fresh raft over all ids, null a black hole. */
  constructor(peers: (Raft | null | undefined)[], extra: Partial<Config> = {}) {
    const ids = peers.map((_, i) => i + 1);
    peers.forEach((p, i) => {
      const id = ids[i];
      if (p === undefined) {
        const s = newTestStorage(ids);
        this.storage.set(id, s);
        this.peers.set(id, newTestRaft(id, 10, 1, s, extra));
      } else {
        if (p) this.storage.set(id, p.raftLog.storage as MemoryStorage);
        this.peers.set(id, p);
      }
    });
  }

  raft(id: TestId): Raft {
    return this.peers.get(Number(id))!;
  }

  send(...msgs: Message[]): void {
    const queue = msgs.slice();
    while (queue.length > 0) {
      const m = queue.shift()!;
      const p = this.peers.get(Number(m.to));
      if (!p) continue;
      stepQuiet(p, m);
      for (const x of this.filter(readMessages(p))) queue.push(x);
    }
  }

  drop(from: TestId, to: TestId, perc: number): void {
    this.dropm.set(`${from}-${to}`, perc);
  }

  cut(one: TestId, other: TestId): void {
    this.drop(one, other, 2);
    this.drop(other, one, 2);
  }

  isolate(id: TestId): void {
    for (const other of this.peers.keys()) if (other !== Number(id)) this.cut(id, other);
  }

  ignore(t: MessageType): void {
    this.ignorem.add(t);
  }

  recover(): void {
    this.dropm.clear();
    this.ignorem.clear();
  }

  private filter(msgs: Message[]): Message[] {
    const out: Message[] = [];
    for (const m of msgs) {
      if (this.ignorem.has(m.type)) continue;
      if (m.type === MessageType.MsgHup) throw new Error("unexpected MsgHup");
      const perc = this.dropm.get(`${m.from}-${m.to}`) ?? 0;
      if (perc > 1 || (perc > 0 && this.rand.intn(1000) < perc * 1000)) continue;
      if (this.msgHook && !this.msgHook(m)) continue;
      out.push(m);
    }
    return out;
  }
}

export function hup(id: TestId): Message {
  return msg(MessageType.MsgHup, id, id);
}

export { NONE };
