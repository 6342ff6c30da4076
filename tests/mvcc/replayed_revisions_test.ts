import { BTree } from "../../mvcc/btree.ts";
import { forEachRevision, ReplayedRevisions } from "../../mvcc/replayed_revisions.ts";
import { revToBytes } from "../../mvcc/revision.ts";
import { compareBytes } from "../../mvcc/bytes.ts";
import { Backend } from "../../mvcc/backend.ts";
import { assert, assertEquals, b, s, tempDir } from "./helpers.ts";

/** A key and value laid out in one buffer, as a replayed record holds them: [key][value]. */
function record(key: Uint8Array, value: Uint8Array): { p: Uint8Array; ke: number; ve: number } {
  const p = new Uint8Array(key.length + value.length);
  p.set(key);
  p.set(value, key.length);
  return { p, ke: key.length, ve: p.length };
}

const put = (r: ReplayedRevisions, key: Uint8Array, value: Uint8Array) => {
  const { p, ke, ve } = record(key, value);
  return r.put(p, 0, ke, ke, ve);
};
const del = (r: ReplayedRevisions, key: Uint8Array) => r.delete(key, 0, key.length);

function visited(content: ReplayedRevisions | BTree<Uint8Array>): string[] {
  const out: string[] = [];
  forEachRevision(content, (main, sub, tomb, buf, start, end) => {
    out.push(`${main}.${sub}${tomb ? "t" : ""}=${s(buf.subarray(start, end))}`);
  });
  return out;
}

Deno.test("replayed revisions: puts in revision order, deletes, tombstones; the same as a tree of the keys", () => {
  for (const seed of [1, 2, 3, 4]) {
    let x = seed;
    const rand = (n: number) => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
    // blocks of 1 to 97 revisions (the default's 16384 in seed 4): puts, deletes and visits across their edges
    const r = seed === 4 ? new ReplayedRevisions() : new ReplayedRevisions(1 + rand(97));
    const want = new BTree<Uint8Array>();
    let main = 1;
    for (let i = 0; i < 3000; i++) {
      if (rand(4) === 0 && want.size > 0) {
        // delete one that exists, or one that does not
        const keys: Uint8Array[] = [];
        want.forEach((k) => void keys.push(k));
        const k = rand(5) === 0 ? revToBytes(main + 5, 0) : keys[rand(keys.length)];
        const had = want.delete(k);
        assertEquals(del(r, k), had === undefined ? -1 : had.length);
        continue;
      }
      main += 1 + rand(3);
      for (let sub = 0, subs = 1 + rand(3); sub < subs; sub++) {
        const k = revToBytes(main, sub, rand(5) === 0);
        const v = b(`v${main}.${sub}`.repeat(1 + rand(3)));
        assert(put(r, k, v));
        want.set(k, v);
      }
    }
    assertEquals(r.size, want.size);
    assertEquals(visited(r), visited(want));
    const tree = r.toBTree();
    const pairs = (t: BTree<Uint8Array>) => {
      const out: string[] = [];
      t.forEach((k, v) => void out.push(`${[...k]}=${s(v)}`));
      return out;
    };
    assertEquals(pairs(tree), pairs(want));
  }
});

Deno.test("replayed revisions: refuses a key out of order or not a revision, and deletes only what is there", () => {
  const r = new ReplayedRevisions();
  assert(put(r, revToBytes(5, 0), b("a")));
  assert(put(r, revToBytes(5, 0, true), b("")), "a tombstone sorts after its revision's key");
  assert(!put(r, revToBytes(5, 0, true), b("x")), "the same key again");
  assert(!put(r, revToBytes(4, 9), b("x")), "a lower revision");
  assert(!put(r, b("k1"), b("x")), "not a revision");
  const badMark = revToBytes(6, 0, true);
  badMark[17] = 0x75;
  assert(!put(r, badMark, b("x")), "an 18th byte that is not the tombstone mark");
  const badSeparator = revToBytes(6, 0);
  badSeparator[8] = 0x2d;
  assert(!put(r, badSeparator, b("x")), "no '_' between main and sub");
  const huge = revToBytes(6, 0);
  huge[0] = 0xff;
  assert(!put(r, huge, b("x")), "a main revision past 2^53");
  assertEquals(visited(r), ["5.0=a", "5.0t="]);
  assertEquals(del(r, revToBytes(5, 1)), -1);
  assertEquals(del(r, b("k1")), -1);
  assertEquals(del(r, revToBytes(5, 0)), 1);
  assertEquals(del(r, revToBytes(5, 0)), -1, "already deleted");
  assertEquals(r.size, 1);
  assert(!put(r, revToBytes(5, 0), b("again")), "behind the last recorded, deleted or not");
});

Deno.test("backend: a key bucket replayed as revisions goes on as a tree once a put is out of order", async () => {
  const dir = await tempDir();
  const path = `${dir}/db`;
  let be = await Backend.open(path);
  const entries: [Uint8Array, Uint8Array][] = [];
  for (let main = 2; main <= 400; main++) entries.push([revToBytes(main, 0, main % 50 === 0), b(`v${main}`)]);
  entries.push([revToBytes(150, 1), b("late")]); // out of order: the rest replays generically
  entries.push([revToBytes(401, 0), b("v401")]);
  for (const [i, [k, v]] of entries.entries()) {
    be.put("key", k, v);
    if (i % 10 === 0) await be.forceCommit();
  }
  for (const main of [3, 150, 402]) be.delete("key", revToBytes(main, 0));
  await be.close();
  const want = entries.filter(([k]) => ![3, 150].some((m) => compareBytes(k, revToBytes(m, 0)) === 0))
    .sort(([a], [c]) => compareBytes(a, c)).map(([k, v]) => `${[...k]}=${s(v)}`);
  for (const how of ["forEach", "detach"]) {
    be = await Backend.open(path);
    try {
      const got: string[] = [];
      if (how === "forEach") be.forEach("key", (k, v) => void got.push(`${[...k]}=${s(v)}`));
      else {
        forEachRevision(be.detach("key", { forEach: () => {} }), (main, sub, tomb, buf, start, end) => {
          got.push(`${[...revToBytes(main, sub, tomb)]}=${s(buf.subarray(start, end))}`);
        });
      }
      assertEquals(got, want, how);
    } finally {
      await be.close();
    }
  }
});
