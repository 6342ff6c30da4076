import { IntervalTree } from "../../mvcc/interval_tree.ts";
import { assertEquals, assertThrows } from "./helpers.ts";

/** mulberry32: the seeded randomness of the test. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ["", "\0", "a", "a\0", "ab", "b", "ba", "c", "cz", "d", "\xff", "\xff\xff"];

Deno.test("interval tree: stabbing matches a brute-force scan under random inserts and deletes", () => {
  for (let seed = 0; seed < 30; seed++) {
    const r = rng(seed);
    const tree = new IntervalTree<string>();
    const model = new Map<string, [string, string]>();
    const pick = () => KEYS[Math.floor(r() * KEYS.length)];
    for (let op = 0; op < 400; op++) {
      const begin = pick();
      const end = r() < 0.2 ? "" : pick();
      const id = `${begin}|${end}`;
      if (end !== "" && begin >= end) {
        assertThrows(() => tree.insert(begin, end, id), (e) => e instanceof Error);
        continue;
      }
      if (model.has(id) && r() < 0.6) {
        assertEquals(tree.delete(begin, end), true, `seed ${seed}: delete ${id}`);
        model.delete(id);
      } else if (!model.has(id)) {
        tree.insert(begin, end, id);
        model.set(id, [begin, end]);
      } else {
        assertEquals(tree.find(begin, end), id);
      }
      assertEquals(tree.size, model.size);
      const p = pick();
      const got: string[] = [];
      tree.stab(p, (v) => got.push(v));
      const want = [...model].filter(([, [b, e]]) => b <= p && (e === "" || p < e)).map(([k]) => k);
      assertEquals(got.sort(), want.sort(), `seed ${seed} op ${op}: stab ${JSON.stringify(p)}`);
      assertEquals(tree.intersects(p), want.length > 0);
    }
    for (const [id, [b, e]] of model) assertEquals(tree.delete(b, e), true, id);
    assertEquals([tree.size, tree.delete("a", "b")], [0, false]);
  }
});
