import { ErrCompacted, ErrFutureRev } from "../../mvcc/errors.ts";
import { assert, assertEquals, assertThrows, b, openStore, s, tempDir } from "./helpers.ts";

Deno.test("kvstore: put/range/delete revisions", async () => {
  const dir = await tempDir();
  const { store, close } = await openStore(dir);
  try {
    assertEquals(store.rev, 1);
    assertEquals(store.put(b("foo"), b("bar")), 2);
    assertEquals(store.put(b("foo"), b("baz")), 3);
    assertEquals(store.put(b("zoo"), b("1"), 7n), 4);
    let r = store.range(b("foo"));
    assertEquals(r.count, 1);
    assertEquals(r.rev, 4);
    const kv = r.kvs[0];
    assertEquals([s(kv.key), s(kv.value), kv.createRevision, kv.modRevision, kv.version], ["foo", "baz", 2n, 3n, 2n]);
    r = store.range(b("foo"), undefined, { rev: 2 });
    assertEquals(s(r.kvs[0].value), "bar");
    r = store.range(b("a"), new Uint8Array([0]));
    assertEquals(r.kvs.map((kv) => s(kv.key)), ["foo", "zoo"]);
    assertEquals(r.kvs[1].lease, 7n);
    r = store.range(b("a"), b("z"));
    assertEquals(r.kvs.map((kv) => s(kv.key)), ["foo"]);
    r = store.range(b("a"), new Uint8Array([0]), { limit: 1 });
    assertEquals([r.kvs.length, r.count], [1, 2]);
    r = store.range(b("a"), new Uint8Array([0]), { countOnly: true });
    assertEquals([r.kvs.length, r.count], [0, 2]);
    assertThrows(() => store.range(b("foo"), undefined, { rev: 5 }), (e: unknown) => e === ErrFutureRev);
    assertEquals(store.deleteRange(b("foo")), { deleted: 1, rev: 5 });
    assertEquals(store.deleteRange(b("foo")), { deleted: 0, rev: 5 });
    assertEquals(store.range(b("foo")).count, 0);
    assertEquals(store.range(b("foo"), undefined, { rev: 4 }).count, 1);
    assertEquals(store.put(b("foo"), b("again")), 6);
    const again = store.range(b("foo")).kvs[0];
    assertEquals([again.createRevision, again.version], [6n, 1n]);
  } finally {
    await close();
  }
});

Deno.test("kvstore: txn shares one main revision with sub revisions; read-your-writes", async () => {
  const dir = await tempDir();
  const { store, backend, close } = await openStore(dir);
  try {
    const t = store.write();
    assertEquals(t.put(b("a"), b("1")), 2);
    assertEquals(t.put(b("b"), b("2")), 2);
    assertEquals(t.range(b("a")).kvs.length, 1);
    assertEquals(t.range(b("a")).rev, 2);
    assertEquals(store.range(b("a")).count, 0, "readers do not see an open txn");
    assertEquals(t.deleteRange(b("a")), { deleted: 1, rev: 2 });
    t.end();
    assertEquals(store.rev, 2);
    const keys: string[] = [];
    backend.forEach("key", (k) => {
      keys.push([...k.subarray(8, 17)].join(",") + (k.length === 18 ? "t" : ""));
    });
    assertEquals(keys, ["95,0,0,0,0,0,0,0,0", "95,0,0,0,0,0,0,0,1", "95,0,0,0,0,0,0,0,2t"]);
  } finally {
    await close();
  }
});

Deno.test("kvstore: restart restores rev, compacted rev, consistent index, hash", async () => {
  const dir = await tempDir();
  let o = await openStore(dir);
  for (let i = 0; i < 50; i++) {
    o.store.setConsistentIndex(100 + i, 3);
    o.store.put(b(`k${i % 7}`), b(`v${i}`), BigInt(i % 3));
  }
  o.store.deleteRange(b("k3"));
  await o.store.compact(30);
  const h1 = o.store.hashByRev(0);
  const hAll = o.store.hash();
  const before = o.store.range(b("k"), new Uint8Array([0]));
  await o.close();

  o = await openStore(dir);
  try {
    assertEquals(o.store.rev, 52);
    assertEquals(o.store.compactMainRev, 30);
    assertEquals(o.store.consistentIndex, 149);
    assertEquals(o.store.term, 3);
    assertEquals(o.store.hashByRev(0), h1);
    assertEquals(o.store.hash(), hAll);
    assertEquals(o.store.range(b("k"), new Uint8Array([0])), before);
    assertThrows(() => o.store.range(b("k0"), undefined, { rev: 29 }), (e: unknown) => e === ErrCompacted);
    assert(o.store.range(b("k0"), undefined, { rev: 30 }).count === 1);
  } finally {
    await o.close();
  }
});
