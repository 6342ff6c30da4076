// The B+ tree against a sorted reference, under seeded mixes of appends past the greatest key (its fast path),
// inserts anywhere, replacements, get-or-inserts, deletes (which drop emptied leaves), clears, and gets.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { BTree, type KeySource } from "../../mvcc/btree.ts";
import { compareBytes } from "../../mvcc/bytes.ts";
import { Rand } from "../../raft/rand.ts";

/** A 4-byte big-endian key: byte order is numeric order. */
const key = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const num = (k: Uint8Array) => new DataView(k.buffer, k.byteOffset, 4).getUint32(0);

function check(t: BTree<number>, ref: Map<number, number>, rand: Rand) {
  const want = [...ref].sort((a, b) => a[0] - b[0]);
  const got: [number, number][] = [];
  t.forEach((k, v) => void got.push([num(k), v]));
  assertEquals(got, want);
  assertEquals(t.size, ref.size);
  const last = t.last();
  assertEquals(last === undefined ? undefined : [num(last[0]), last[1]], want.at(-1));
  const lo = rand.intn(4000), hi = lo + rand.intn(500);
  const ranged: number[] = [];
  t.range(key(lo), key(hi), (k) => void ranged.push(num(k)));
  assertEquals(ranged, want.map(([k]) => k).filter((k) => k >= lo && k < hi));
}

/** Keys kept as numbers (a KeySource: see BTree.getOrInsert): number n stands for key(n). */
let numberCompares = 0;
const numbers: KeySource = {
  compareTo: (n, k) => (numberCompares++, compareBytes(key(n), k)),
  compare: (a, b) => (numberCompares++, a - b),
  key,
};

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  // odd seeds: get-or-inserts keep their keys as numbers, among the others kept as bytes
  const src = seed % 2 === 1 ? numbers : null;
  Deno.test(`btree: appends, inserts, deletes and clears agree with a sorted map (seed ${seed}${src ? ", numbers" : ""})`, () => {
    const rand = new Rand(seed);
    const t = new BTree<number>(src);
    const ref = new Map<number, number>();
    let next = 0;
    for (let step = 0; step < 6000; step++) {
      const r = rand.intn(100);
      if (r < 55) {
        // past the greatest key: a run of appends
        next += 1 + rand.intn(3);
        assertEquals(t.set(key(next), step), ref.get(next));
        ref.set(next, step);
      } else if (r < 65) {
        const k = rand.intn(next + 10);
        assertEquals(t.set(key(k), step), ref.get(k));
        ref.set(k, step);
        next = Math.max(next, k);
      } else if (r < 75) {
        // get-or-insert, anywhere and past the greatest key: an existing value is kept, a missing one made once
        const k = rand.intn(2) === 0 ? next + 1 + rand.intn(2) : rand.intn(next + 10);
        let made = 0;
        const got = t.getOrInsert(src === null ? key(k) : k, (kb) => {
          assertEquals(kb, src === null ? key(k) : k);
          made++;
          return step;
        });
        assertEquals([got, made], ref.has(k) ? [ref.get(k), 0] : [step, 1]);
        if (!ref.has(k)) ref.set(k, step);
        next = Math.max(next, k);
      } else if (r < 99) {
        // deletes, often of the greatest keys: the rightmost leaf empties and leaves the tree
        const k = rand.intn(2) === 0 ? next - rand.intn(70) : rand.intn(next + 1);
        assertEquals(t.delete(key(k)), ref.get(k));
        ref.delete(k);
      } else {
        t.clear();
        ref.clear();
      }
      // gets anywhere, past the greatest key too (its fast path)
      const probe = rand.intn(next + 20);
      assertEquals(t.get(key(probe)), ref.get(probe));
      if (step % 500 === 0) check(t, ref, rand);
    }
    check(t, ref, rand);
    if (src !== null) assertEquals(numberCompares > 0, true, "keys kept as numbers were compared");
  });
}

Deno.test("btree: gets stay right while the greatest keys are deleted (the rightmost leaf empties)", () => {
  const t = new BTree<number>();
  for (let k = 0; k < 1000; k++) t.set(key(k), k);
  for (let k = 999; k >= 500; k--) {
    t.delete(key(k));
    assertEquals([t.get(key(k)), t.get(key(k - 1)), t.get(key(k + 1)), t.get(key(0))], [
      undefined,
      k - 1,
      undefined,
      0,
    ]);
  }
});

for (const seed of [11, 12, 13, 14]) {
  Deno.test(`btree: nearly ordered runs between existing keys (the last insert's leaf) agree with a sorted map (seed ${seed})`, () => {
    const rand = new Rand(seed);
    const t = new BTree<number>();
    const ref = new Map<number, number>();
    let step = 0;
    // runs of keys that climb with jitter, as writers taking turns put them, each starting anywhere among the keys
    const run = () => {
      const start = rand.intn(200_000), stride = 1 + rand.intn(4);
      for (let i = 0; i < 200 + rand.intn(1500); i++) {
        const k = start + i * stride + rand.intn(17) - 8;
        if (k < 0) continue;
        step++;
        if (rand.intn(2) === 0) {
          assertEquals(t.set(key(k), step), ref.get(k));
          ref.set(k, step);
        } else {
          const got = t.getOrInsert(key(k), () => step);
          assertEquals(got, ref.get(k) ?? step);
          if (!ref.has(k)) ref.set(k, step);
        }
        const probe = start + rand.intn((i + 1) * stride + 20);
        assertEquals(t.get(key(probe)), ref.get(probe));
      }
    };
    for (let round = 0; round < 3; round++) {
      for (let r = 0; r < 12; r++) run();
      check(t, ref, rand);
      // deletes, first keys of leaves among them: a leaf's first key is no longer its separator
      const keys = [...ref.keys()];
      for (let d = 0; d < 400; d++) {
        const k = keys[rand.intn(keys.length)];
        assertEquals(t.delete(key(k)), ref.get(k));
        ref.delete(k);
      }
      for (let r = 0; r < 6; r++) run();
      check(t, ref, rand);
      if (round === 1) {
        t.clear();
        ref.clear();
      }
    }
  });
}
