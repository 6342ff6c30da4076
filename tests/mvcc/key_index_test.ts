import { type IndexRev, KeyIndex } from "../../mvcc/key_index.ts";
import { TreeIndex } from "../../mvcc/index.ts";
import { newKeyValue } from "../../mvcc/kv_codec.ts";
import { EMPTY_BYTES } from "../../mvcc/bytes.ts";
import { assert, assertEquals, b, s } from "./helpers.ts";

const kv = (key: string, main: number) => newKeyValue(b(key), EMPTY_BYTES, 0n, BigInt(main), 0n, 0n);

/** etcd's newTestKeyIndex: gens {2,4,6t} {8,10,12t} {14,14.1,16t} {}. */
function testKeyIndex(): KeyIndex {
  const ki = new KeyIndex(b("foo"));
  ki.put(2, 0, kv("foo", 2));
  ki.put(4, 0, kv("foo", 4));
  ki.tombstone(6, 0, kv("foo", 6));
  ki.put(8, 0, kv("foo", 8));
  ki.put(10, 0, kv("foo", 10));
  ki.tombstone(12, 0, kv("foo", 12));
  ki.put(14, 0, kv("foo", 14));
  ki.put(14, 1, kv("foo", 14));
  ki.tombstone(16, 0, kv("foo", 16));
  return ki;
}

const gens = (ki: KeyIndex) => ki.generations.map((g) => g.revs.map((r) => r.sub ? `${r.main}.${r.sub}` : `${r.main}`));
const revs = (set: Set<string>) => [...set].map((k) => k.replace("_0", "").replace("_", ".")).sort();
const names = (rs: IndexRev[]) => rs.map((r) => r.sub ? `${r.main}.${r.sub}` : `${r.main}`).sort();

Deno.test("keyIndex: get after compact(4) (etcd TestKeyIndexGet)", () => {
  const ki = testKeyIndex();
  ki.compact(4, []);
  const table: [number, string | null, number, number][] = [
    [17, null, 0, 0],
    [16, null, 0, 0],
    [15, "14.1", 14, 2],
    [14, "14.1", 14, 2],
    [13, null, 0, 0],
    [12, null, 0, 0],
    [11, "10.0", 8, 2],
    [10, "10.0", 8, 2],
    [9, "8.0", 8, 1],
    [8, "8.0", 8, 1],
    [7, null, 0, 0],
    [6, null, 0, 0],
    [5, "4.0", 2, 2],
    [4, "4.0", 2, 2],
    [3, null, 0, 0],
    [2, null, 0, 0],
    [1, null, 0, 0],
    [0, null, 0, 0],
  ];
  for (const [rev, want, created, ver] of table) {
    const g = ki.get(rev);
    if (want === null) {
      assertEquals(g, null, `rev ${rev}`);
      continue;
    }
    assert(g !== null, `rev ${rev}`);
    assertEquals([`${g.rev.main}.${g.rev.sub}`, g.created.main, g.ver], [want, created, ver], `rev ${rev}`);
  }
});

Deno.test("keyIndex: since dedups main revisions", () => {
  const ki = testKeyIndex();
  const since = (r: number) => ki.since(r).map((x) => x.sub ? `${x.main}.${x.sub}` : `${x.main}`);
  assertEquals(since(1), ["2", "4", "6", "8", "10", "12", "14.1", "16"]);
  assertEquals(since(9), ["10", "12", "14.1", "16"]);
  assertEquals(since(14), ["14.1", "16"]);
  assertEquals(since(16), ["16"]);
  assertEquals(since(17), []);
});

Deno.test("keyIndex: compact generations and keep sets (etcd TestKeyIndexCompactAndKeep)", () => {
  const all = [["2", "4", "6"], ["8", "10", "12"], ["14", "14.1", "16"], []];
  const table: [number, string[][], string[]][] = [
    [1, all, []],
    [2, all, ["2"]],
    [3, all, ["2"]],
    [4, [["4", "6"], ...all.slice(1)], ["4"]],
    [5, [["4", "6"], ...all.slice(1)], ["4"]],
    [6, all.slice(1), []],
    [7, all.slice(1), []],
    [8, all.slice(1), ["8"]],
    [9, all.slice(1), ["8"]],
    [10, [["10", "12"], ...all.slice(2)], ["10"]],
    [11, [["10", "12"], ...all.slice(2)], ["10"]],
    [12, all.slice(2), []],
    [13, all.slice(2), []],
    [14, [["14.1", "16"], []], ["14.1"]],
    [15, [["14.1", "16"], []], ["14.1"]],
    [16, [[]], []],
    [17, [[]], []],
  ];
  for (const [rev, wantGens, wantAvail] of table) {
    const keep = new Set<string>();
    testKeyIndex().keep(rev, keep);
    assertEquals(revs(keep), [...wantAvail].sort(), `keep ${rev}`);
    const ki = testKeyIndex();
    const removed: IndexRev[] = [];
    ki.compact(rev, removed);
    assertEquals(gens(ki), wantGens, `compact ${rev}`);
    // The backend deletes exactly the revisions <= rev that a compaction does not keep.
    const upTo = testKeyIndex().generations.flatMap((g) => g.revs).filter((r) => r.main <= rev);
    assertEquals(names(removed), names(upTo).filter((n) => !wantAvail.includes(n)), `compact removed ${rev}`);
  }
  // Compacting step by step gives the same result as compacting at once, and removes every dropped revision once.
  const ki = testKeyIndex();
  const removed: IndexRev[] = [];
  for (let rev = 1; rev <= 15; rev++) ki.compact(rev, removed);
  assertEquals(gens(ki), [["14.1", "16"], []]);
  assertEquals(names(removed), names(testKeyIndex().generations.flatMap((g) => g.revs).slice(0, 7)));
});

Deno.test("keyIndex: tombstone of a deleted key fails; put after tombstone starts a generation", () => {
  const ki = new KeyIndex(b("k"));
  ki.put(5, 0, kv("k", 5));
  assert(ki.tombstone(7, 0, kv("k", 7)));
  assert(!ki.tombstone(8, 0, kv("k", 8)));
  ki.put(9, 0, kv("k", 9));
  assertEquals(gens(ki), [["5", "7"], ["9"]]);
  assertEquals(ki.get(9)?.created.main, 9);
  assertEquals(ki.get(9)?.ver, 1);
});

Deno.test("treeIndex: ranges, limits, counts, rangeSince, compact", () => {
  const ti = new TreeIndex();
  let rev = 1;
  for (let i = 0; i < 500; i++) ti.put(b(`key${String(i).padStart(4, "0")}`), ++rev, 0, kv("x", rev));
  ti.put(b("key0001"), ++rev, 0, kv("key0001", rev)); // 502
  ti.tombstone(b("key0002"), ++rev, 0, kv("key0002", rev)); // 503
  const r = ti.revisions(b("key0000"), b("key0010"), rev, 3);
  assertEquals([r.revs.map((x) => x.main), r.count], [[2, 502, 5], 9]);
  assertEquals(ti.revisions(b("key0000"), b("key0010"), 10, 0).count, 9);
  assertEquals(ti.countRevisions(b("key0000"), b("key0010"), 10), 9);
  assertEquals(ti.countRevisions(b("key0000"), b("key0010"), 4), 3);
  assertEquals(ti.countRevisions(b("key0000"), EMPTY_BYTES, rev), 499);
  assertEquals(ti.countRevisions(b("key0002"), undefined, 502), 1);
  assertEquals(ti.countRevisions(b("key0002"), undefined, 503), 0);
  assertEquals(ti.rangeSince(b("key0000"), b("key0003"), 3).map((x) => x.main), [3, 4, 502, 503]);
  assertEquals(ti.get(b("key0001"), 600)?.ver, 2);
  const removed = ti.compact(503);
  assertEquals(ti.size, 499, "the deleted key's history is dropped");
  assertEquals(removed.map((r) => r.main).sort((x, y) => x - y), [3, 4, 503], "key0001@3, key0002@4 and @503");
  assertEquals(ti.get(b("key0001"), 503)?.rev.main, 502);
  const seen: string[] = [];
  ti.visit(b("key0498"), EMPTY_BYTES, (ki) => {
    seen.push(s(ki.key));
  });
  assertEquals(seen, ["key0498", "key0499"]);
});

Deno.test("keyIndex: a key kept without generation arrays answers as one with them", () => {
  // `plain` keeps its one revision without arrays as long as it can; `full` is made to build them at once
  const cases: ((ki: KeyIndex) => void)[] = [
    (ki) => ki.put(5, 0, kv("k", 5)),
    (ki) => ki.put(5, 2, kv("k", 5)),
    (ki) => ki.restore({ main: 3, sub: 0 }, { main: 7, sub: 1, kv: kv("k", 7) }, 4),
    (ki) => ki.restore({ main: 7, sub: 0 }, { main: 7, sub: 0, kv: kv("k", 7) }, 1),
  ];
  const answers = (ki: KeyIndex) => {
    const out: unknown[] = [];
    for (let rev = 0; rev <= 12; rev++) {
      const g = ki.get(rev);
      out.push(
        g === null ? null : [g.rev.main, g.rev.sub, g.created.main, g.created.sub, g.ver],
        ki.getRev(rev)?.main ?? null,
        ki.isEmpty() ? "empty" : names(ki.since(rev)),
      );
      const available = new Set<string>();
      ki.keep(rev, available);
      out.push(revs(available));
    }
    out.push(ki.live?.main ?? null, ki.isEmpty());
    const all: IndexRev[] = [];
    ki.forEachRev((r) => all.push(r));
    out.push(names(all));
    return out;
  };
  for (const start of cases) {
    for (const then of ["nothing", "compact", "put", "tombstone", "tombstone+put"]) {
      const [plain, full] = [new KeyIndex(b("k")), new KeyIndex(b("k"))];
      for (const ki of [plain, full]) start(ki);
      void full.generations;
      for (const ki of [plain, full]) {
        if (then === "compact") {
          const removed: IndexRev[] = [];
          ki.compact(10, removed);
          assertEquals(removed, []);
        }
        if (then.startsWith("put")) ki.put(9, 0, kv("k", 9));
        if (then.startsWith("tombstone")) assertEquals(ki.tombstone(9, 0, kv("k", 9)), true);
        if (then === "tombstone+put") ki.put(11, 0, kv("k", 11));
      }
      assertEquals(answers(plain), answers(full), then);
      assertEquals(gens(plain), gens(full), then);
    }
  }
  // a key never put has no revisions, and a second delete is refused as before
  const fresh = new KeyIndex(b("k"));
  assertEquals([fresh.live, fresh.get(5), fresh.getRev(5), fresh.isEmpty()], [undefined, null, null, false]);
  fresh.put(2, 0, kv("k", 2));
  assertEquals(fresh.tombstone(3, 0, kv("k", 3)), true);
  assertEquals(fresh.tombstone(4, 0, kv("k", 4)), false);
});
