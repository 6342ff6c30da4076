// A linearizability checker in the style of Porcupine (Wing & Gong's search with Lowe's memoization): for each key
// on its own (P-compositionality), look for an order of the operations that respects real time (an operation that
// returned before another was invoked comes first) in which the register's sequential specification explains every
// output. Operations whose outcome is unknown return "at infinity": they may take effect at any time after their
// invocation, or never. The search remembers each (set of operations linearized, state) it has tried, so it never
// repeats a configuration; a step budget bounds it, past which the answer is "unknown" rather than a hang.
import { acknowledgedWrites, formatHistory, type Operation } from "./history.ts";

/** A sequential specification (Porcupine's Model): the state after `op` from `state`, undefined when `op` could
 * not have returned what it did there. States must not be undefined. */
export interface Model<S> {
  init: S;
  step(state: S, op: Operation): S | undefined;
  /** A string equal for equal states (the memo's key). */
  key(state: S): string;
}

/** etcd's key as a register: absent (null) until written; reads, writes and compare-and-swap through a Txn. */
export const registerModel: Model<string | null> = {
  init: null,
  step(state, op) {
    const i = op.input;
    switch (i.op) {
      case "write":
        return i.value;
      case "read": {
        const out = op.output;
        return out !== undefined && "value" in out && out.value === state ? state : undefined;
      }
      case "cas": {
        const out = op.output;
        if (out === undefined || !("ok" in out)) return state === i.expect ? i.value : state; // outcome unknown
        if (out.ok) return state === i.expect ? i.value : undefined;
        return state !== i.expect ? state : undefined;
      }
    }
  },
  key: (s) => s === null ? "" : `=${s}`,
};

export interface CheckOptions {
  /** Search steps per key before giving up with "unknown" (and per attempt while shrinking). */
  budget?: number;
}

export type CheckResult =
  | { verdict: "ok"; keys: number; operations: number }
  /** `subHistory`: a smallest sub-history of the key that is still not linearizable (reads keep the writes they saw). */
  | { verdict: "violation"; key: string; history: Operation[]; subHistory: Operation[] }
  | { verdict: "unknown"; key: string; history: Operation[] };

const DEFAULT_BUDGET = 5_000_000;

/** Checks every key's history; the first key that fails is reported (with its smallest failing sub-history). */
export function checkLinearizable<S>(ops: Operation[], model: Model<S>, opts: CheckOptions = {}): CheckResult {
  const budget = opts.budget ?? DEFAULT_BUDGET;
  const byKey = new Map<string, Operation[]>();
  let operations = 0;
  for (const op of ops) {
    // a read that never returned says nothing
    if (op.input.op === "read" && op.ret === undefined) continue;
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, list = []);
    list.push(op);
    operations++;
  }
  for (const [key, history] of [...byKey].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    const r = search(model, history, budget);
    if (r === undefined) return { verdict: "unknown", key, history };
    if (!r) return { verdict: "violation", key, history, subHistory: shrink(model, history, budget) };
  }
  return { verdict: "ok", keys: byKey.size, operations };
}

/** A report of a failed check: the key, the smallest offending sub-history, then the key's whole history. */
export function formatResult(r: CheckResult): string {
  if (r.verdict === "ok") return `linearizable: ${r.operations} operations on ${r.keys} keys`;
  if (r.verdict === "unknown") {
    return `linearizability of ${r.key} undecided within the search budget (${r.history.length} operations)`;
  }
  return `not linearizable: key ${r.key}\nsmallest offending sub-history:\n${formatHistory(r.subHistory)}\n` +
    `the key's history (${r.history.length} operations):\n${formatHistory(r.history)}`;
}

interface Event {
  op: number;
  isCall: boolean;
  /** The call's return event. */
  match: Event | undefined;
  prev: Event | undefined;
  next: Event | undefined;
}

/** Whether `history` is linearizable; undefined when the budget ran out first. */
export function search<S>(model: Model<S>, history: Operation[], budget = DEFAULT_BUDGET): boolean | undefined {
  const n = history.length;
  const times: { op: number; isCall: boolean; t: number }[] = [];
  history.forEach((op, i) => {
    if (op.ret !== undefined && op.ret < op.call) throw new Error(`operation ${op.id} returns before its call`);
    times.push({ op: i, isCall: true, t: op.call }, { op: i, isCall: false, t: op.ret ?? Infinity });
  });
  // at equal times calls come first: the operations then overlap, which forbids no order
  times.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Event = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  const calls: Event[] = new Array(n);
  let last = head;
  for (const t of times) {
    const e: Event = { op: t.op, isCall: t.isCall, match: undefined, prev: last, next: undefined };
    last.next = e;
    last = e;
    if (t.isCall) calls[t.op] = e;
    else calls[t.op].match = e;
  }

  const linearized = new Uint16Array(Math.ceil(n / 16));
  const seen = new Set<string>();
  const stack: { call: Event; state: S }[] = [];
  let state = model.init;
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > budget) return undefined;
    const e = entry!;
    if (e.isCall) {
      const next = model.step(state, history[e.op]);
      if (next !== undefined) {
        linearized[e.op >> 4] ^= 1 << (e.op & 15);
        const memo = String.fromCharCode(...linearized) + "|" + model.key(next);
        if (!seen.has(memo)) {
          seen.add(memo);
          stack.push({ call: e, state });
          state = next;
          lift(e);
          entry = head.next;
          continue;
        }
        linearized[e.op >> 4] ^= 1 << (e.op & 15);
      }
      entry = e.next;
    } else {
      // an operation returned before any order could place it: undo the last choice
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized[top.call.op >> 4] ^= 1 << (top.call.op & 15);
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
}

/** Takes a call and its return out of the list (the operation is placed). */
function lift(call: Event): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== undefined) ret.next.prev = ret.prev;
}

/** Puts them back where they were, in reverse order of lift. */
function unlift(call: Event): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== undefined) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

/**
 * Drops operations one at a time while the rest is still not linearizable, until none can go: what remains is a
 * smallest failing sub-history. A write that a remaining read or successful CAS observed stays, so every value read
 * is still explained by its write and the remainder shows the real conflict.
 */
function shrink<S>(model: Model<S>, history: Operation[], budget: number): Operation[] {
  let cur = [...history].sort((a, b) => a.call - b.call);
  for (let changed = true; changed;) {
    changed = false;
    for (let i = cur.length - 1; i >= 0; i--) {
      if (observed(cur[i], cur)) continue;
      const rest = cur.filter((_, j) => j !== i);
      if (search(model, rest, budget) === false) {
        cur = rest;
        changed = true;
      }
    }
  }
  return cur;
}

function observed(op: Operation, ops: Operation[]): boolean {
  if (op.input.op === "read") return false;
  const v = op.input.value;
  return ops.some((o) => {
    if (o === op || o.output === undefined) return false;
    if (o.input.op === "read") return "value" in o.output && o.output.value === v;
    return o.input.op === "cas" && "ok" in o.output && o.output.ok && o.input.expect === v;
  });
}

/** The final state of a key as a linearizable read after the run saw it (undefined: no key). */
export interface FinalValue {
  value: string;
  modRevision: number;
}

/**
 * Acknowledged writes that are gone: each must be the key's final value, or superseded, so its revision is at most
 * the key's final mod revision, and equal only for the value it wrote.
 */
export function lostWrites(ops: Operation[], final: Map<string, FinalValue>): Operation[] {
  return acknowledgedWrites(ops).filter((op) => {
    const f = final.get(op.key);
    if (f === undefined) return true;
    return op.revision > f.modRevision || (op.revision === f.modRevision && f.value !== op.input.value);
  });
}
