// The checker on hand-made histories, legal and not: it must accept every legal one (generated ones included) and
// reject each anomaly the fault suite hunts (stale reads, values going back, lost and phantom writes, a wrong CAS),
// pointing at the few operations that conflict.
import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import { HistoryRecorder, type Operation, type RegisterInput, type RegisterOutput } from "./history.ts";
import { checkLinearizable, formatResult, lostWrites, registerModel, search } from "./linearizability.ts";

let ids = 0;
/** An operation on key "k" from client c, called at `call`, returned at `ret` (undefined: unknown outcome). */
function op(c: number, input: RegisterInput, call: number, ret?: number, output?: RegisterOutput): Operation {
  return { id: ids++, client: c, key: "k", input, call, ret, output: ret === undefined ? undefined : output };
}
const w = (c: number, value: string, call: number, ret?: number) => op(c, { op: "write", value }, call, ret, {});
const r = (c: number, value: string | null, call: number, ret: number) => op(c, { op: "read" }, call, ret, { value });
const cas = (c: number, expect: string | null, value: string, call: number, ret?: number, swapped?: boolean) =>
  op(c, { op: "cas", expect, value }, call, ret, swapped === undefined ? undefined : { ok: swapped });

const legal = (ops: Operation[]) =>
  equal(search(registerModel, ops), true, formatResult(checkLinearizable(ops, registerModel)));
const illegal = (ops: Operation[]) => equal(search(registerModel, ops), false);

Deno.test("linearizability: sequential reads and writes", () => {
  legal([r(1, null, 0, 1), w(1, "a", 2, 3), r(2, "a", 4, 5), w(2, "b", 6, 7), r(1, "b", 8, 9)]);
  illegal([w(1, "a", 0, 1), r(2, null, 2, 3)]);
  illegal([r(1, "a", 0, 1)]); // a value no one wrote
});

Deno.test("linearizability: concurrent operations take effect in either order, then stay", () => {
  const w1 = w(1, "a", 0, 10), w2 = w(2, "b", 5, 15);
  legal([w1, w2, r(3, "a", 20, 21)]);
  legal([w1, w2, r(3, "b", 20, 21)]);
  legal([w1, w2, r(3, "b", 20, 21), r(3, "b", 22, 23)]);
  illegal([w1, w2, r(3, "b", 20, 21), r(3, "a", 22, 23)]); // went back
  // a read overlapping a write may see before or after it, but two reads in order cannot see after, then before
  legal([w(1, "a", 0, 1), w(2, "b", 2, 10), r(3, "a", 3, 4), r(3, "b", 5, 6), r(4, "b", 7, 8)]);
  illegal([w(1, "a", 0, 1), w(2, "b", 2, 10), r(3, "b", 3, 4), r(3, "a", 5, 6)]);
  // a read cannot see a write invoked after it returned
  illegal([r(1, "a", 0, 1), w(2, "a", 2, 3)]);
});

Deno.test("linearizability: a write whose outcome is unknown may apply at any time after its call, or never", () => {
  const lost = w(1, "x", 5); // timed out
  legal([w(1, "a", 0, 1), lost, r(2, "a", 10, 11)]);
  legal([w(1, "a", 0, 1), lost, r(2, "x", 10, 11)]);
  legal([w(1, "a", 0, 1), lost, r(2, "a", 10, 11), r(2, "x", 100, 101)]);
  illegal([w(1, "a", 0, 1), lost, r(2, "x", 10, 11), r(2, "a", 12, 13)]); // once seen it stays
  illegal([r(2, "x", 0, 1), w(1, "x", 5)]); // seen before its call
});

Deno.test("linearizability: compare-and-swap", () => {
  legal([w(1, "a", 0, 1), cas(2, "a", "b", 2, 3, true), r(1, "b", 4, 5), cas(1, "a", "c", 6, 7, false)]);
  illegal([w(1, "a", 0, 1), cas(2, "z", "b", 2, 3, true)]); // swapped though the value differed
  illegal([w(1, "a", 0, 1), cas(2, "a", "b", 2, 3, false)]); // failed though the value matched
  legal([cas(1, null, "a", 0, 1, true), r(2, "a", 2, 3)]); // null: the key does not exist
  // an unknown CAS applies only if its compare held where it lands
  legal([w(1, "a", 0, 1), cas(2, "a", "b", 2), r(1, "b", 10, 11)]);
  illegal([w(1, "a", 0, 1), cas(2, "z", "b", 2), r(1, "b", 10, 11)]);
});

Deno.test("linearizability: a violation is reported with the smallest sub-history that shows it", () => {
  // noise: many clients reading and writing legally, then one stale read
  const ops: Operation[] = [];
  let t = 0;
  for (let i = 0; i < 30; i++) {
    ops.push(w(i % 4, `v${i}`, t, t + 3));
    ops.push(r((i + 1) % 4, i === 0 ? null : `v${i - 1}`, t + 1, t + 2)); // overlaps the write: sees the previous
    t += 4;
  }
  ops.push(r(7, "v10", t, t + 1)); // v10 was overwritten by v11..v29 long before
  const other = { ...w(1, "z", 0, 1), key: "other" };
  const res = checkLinearizable([other, ...ops], registerModel);
  equal(res.verdict, "violation");
  if (res.verdict !== "violation") return;
  equal(res.key, "k");
  // v10's write, a later write that completed before the read, the read
  equal(res.subHistory.length, 3, formatResult(res));
  ok(res.subHistory.some((o) => o.input.op === "write" && o.input.value === "v10"));
  ok(res.subHistory.some((o) => o.client === 7));
  ok(formatResult(res).includes("smallest offending sub-history"));
});

Deno.test("linearizability: histories generated from a register with real linearization points always pass", () => {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let run = 0; run < 30; run++) {
    // each operation takes effect at a point inside its interval; unknown ones sometimes never do
    const points: { at: number; o: Operation }[] = [];
    const clientFree = [0, 0, 0, 0, 0];
    for (let i = 0; i < 60; i++) {
      const c = Math.floor(rand() * clientFree.length);
      const call = clientFree[c] + rand() * 5, at = call + rand() * 10, ret = at + rand() * 10;
      clientFree[c] = ret;
      const kind = rand();
      const input: RegisterInput = kind < 0.4
        ? { op: "read" }
        : kind < 0.7
        ? { op: "write", value: `${run}.${i}` }
        : { op: "cas", expect: rand() < 0.5 ? null : `${run}.${Math.floor(rand() * i)}`, value: `${run}.${i}` };
      const o: Operation = { id: ids++, client: c, key: "k", input, call, ret };
      points.push({ at, o });
    }
    points.sort((a, b) => a.at - b.at);
    let state: string | null = null;
    for (const { o } of points) {
      const unknown = o.input.op !== "read" && rand() < 0.1;
      const applies = !unknown || rand() < 0.5;
      if (o.input.op === "read") o.output = { value: state };
      else if (o.input.op === "write") {
        o.output = {};
        if (applies) state = o.input.value;
      } else {
        const swapped = state === o.input.expect;
        o.output = { ok: swapped };
        if (swapped && applies) state = o.input.value;
      }
      if (unknown) {
        o.ret = undefined;
        o.output = undefined;
      }
    }
    const ops = points.map((p) => p.o);
    const res = checkLinearizable(ops, registerModel);
    equal(res.verdict, "ok", formatResult(res));
  }
});

Deno.test("linearizability: operations meeting at one instant overlap", () => {
  // w2 is invoked the moment w1 returns: either may come first, so a later read may see a
  legal([w(1, "a", 0, 5), w(2, "b", 5, 6), r(3, "a", 7, 8)]);
});

Deno.test("linearizability: the memo of tried configurations keeps a wide history decidable", () => {
  // 12 overlapping writes and a read of a value nobody wrote: 12! orders, but only 2^12 sets of placed writes
  const ops = Array.from({ length: 12 }, (_, i) => w(i, `v${i}`, 0, 100));
  ops.push(r(99, "nobody", 200, 201));
  equal(search(registerModel, ops, 200_000), false);
});

Deno.test("linearizability: the search budget makes an undecidable run 'unknown', never a hang", () => {
  // many overlapping writes, then a read of a value nobody wrote: every order is tried before giving up
  const ops = Array.from({ length: 14 }, (_, i) => w(i, `v${i}`, 0, 100));
  ops.push(r(99, "nobody", 200, 201));
  equal(checkLinearizable(ops, registerModel, { budget: 1000 }).verdict, "unknown");
});

Deno.test("lost writes: an acknowledged write must be the final value or superseded", () => {
  const a = { ...w(1, "a", 0, 1), revision: 5 }, b = { ...w(2, "b", 2, 3), revision: 6 };
  const maybe = w(3, "c", 4); // unknown: may be lost
  assertEquals(lostWrites([a, b, maybe], new Map([["k", { value: "b", modRevision: 6 }]])), []);
  assertEquals(lostWrites([a, b], new Map([["k", { value: "a", modRevision: 5 }]])), [b]);
  assertEquals(lostWrites([a, b], new Map()), [a, b]);
  assertEquals(lostWrites([a, b], new Map([["k", { value: "x", modRevision: 6 }]])), [b]);
  const failedCas = { ...cas(4, "zz", "d", 5, 6, false), revision: 9 };
  assertEquals(lostWrites([failedCas], new Map([["k", { value: "b", modRevision: 6 }]])), []);
});

Deno.test("history recorder: completions, unknown and not-applied operations", () => {
  let now = 0;
  const h = new HistoryRecorder(() => now++);
  const p1 = h.invoke(1, "k", { op: "write", value: "a" });
  const p2 = h.invoke(2, "k", { op: "read" });
  const p3 = h.invoke(3, "k", { op: "write", value: "b" });
  const p4 = h.invoke(4, "k", { op: "write", value: "c" });
  p1.ok({}, 7);
  p2.ok({ value: "a" });
  p3.unknown();
  p4.notApplied();
  const ops = h.operations();
  assertEquals(ops.map((o) => [o.client, o.call, o.ret, o.revision]), [[1, 0, 4, 7], [2, 1, 5, undefined], [
    3,
    2,
    undefined,
    undefined,
  ]]);
  let threw = false;
  try {
    p1.ok({});
  } catch {
    threw = true;
  }
  ok(threw, "an operation completes once");
});
