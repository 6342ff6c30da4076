import { ErrCompacted, ErrFutureRev } from "../../mvcc/errors.ts";
import { assert, assertEquals, assertThrows, b, committedKeys, logKeys, openStore, s, tempDir } from "./helpers.ts";

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
    const keys = (await committedKeys(backend, "key")).map((k) =>
      [...k.subarray(8, 17)].join(",") + (k.length === 18 ? "t" : "")
    );
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

Deno.test("kvstore: compaction removes old revisions from the backend; crash mid-compaction resumes", async () => {
  const dir = await tempDir();
  let o = await openStore(dir, { compactionBatchLimit: 5, compactionSleepMs: 30 });
  for (let i = 0; i < 100; i++) o.store.put(b(`k${i % 4}`), b(`v${i}`));
  o.store.deleteRange(b("k3"));
  const rev = o.store.rev; // 102
  assertEquals((await committedKeys(o.backend, "key")).length, 101);
  const done = o.store.compact(90);
  // Let a couple of batches commit, then stop as a crash would (the finishing record is never written).
  while ((await logKeys(o.backend.path, "key")).length > 80) await new Promise((r) => setTimeout(r, 5));
  await o.close();
  await done;

  o = await openStore(dir, { compactionBatchLimit: 1000 });
  try {
    assertEquals(o.store.compactMainRev, 90);
    assertEquals(o.store.rev, rev);
    await o.store.compactionDone();
    // Kept: the newest revision <= 90 of each key (k1 87, k2 88, k3 89, k0 90) and everything after 90.
    const left = (await committedKeys(o.backend, "key")).map((k) => new DataView(k.buffer, k.byteOffset).getUint32(4));
    assertEquals(left, [87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102]);
    assertEquals(o.store.range(b("k0"), undefined, { rev: 90 }).kvs[0].modRevision, 90n);
    assertThrows(() => o.store.range(b("k0"), undefined, { rev: 89 }), (e: unknown) => e === ErrCompacted);
    assertThrows(() => o.store.compact(90), (e: unknown) => e === ErrCompacted);
  } finally {
    await o.close();
  }
  o = await openStore(dir);
  try {
    assertEquals(o.store.compactMainRev, 90);
    await o.store.compactionDone();
    assertEquals((await committedKeys(o.backend, "key")).length, 16, "finished compaction is not redone");
  } finally {
    await o.close();
  }
});

Deno.test("kvstore: compacting past a tombstone drops the key; hashByRev is stable across restart", async () => {
  const dir = await tempDir();
  let o = await openStore(dir);
  o.store.put(b("gone"), b("1")); // 2
  o.store.put(b("stay"), b("1")); // 3
  o.store.deleteRange(b("gone")); // 4
  o.store.put(b("stay"), b("2")); // 5
  const h5 = o.store.hashByRev(5);
  const h3 = o.store.hashByRev(3);
  assertThrows(() => o.store.hashByRev(6), (e: unknown) => e === ErrFutureRev);
  await o.store.compact(4);
  assertEquals(o.store.index.size, 1);
  assertEquals((await committedKeys(o.backend, "key")).length, 2);
  assertThrows(() => o.store.hashByRev(3), (e: unknown) => e === ErrCompacted);
  const after = o.store.hashByRev(5);
  await o.close();
  o = await openStore(dir);
  try {
    assertEquals(o.store.hashByRev(5), after);
    assert(h5.hash !== h3.hash);
    assertEquals(o.store.range(b("gone"), undefined, { rev: 4 }).count, 0);
    assertEquals(o.store.range(b("stay"), undefined, { rev: 4 }).kvs[0].version, 1n);
    assertEquals(o.store.range(b("stay")).kvs[0].version, 2n);
  } finally {
    await o.close();
  }
});

Deno.test("kvstore: leases attach/detach and are re-attached on restore", async () => {
  const dir = await tempDir();
  const log: string[] = [];
  const lessor = {
    attach: (id: bigint, key: Uint8Array) => log.push(`+${id}:${s(key)}`),
    detach: (id: bigint, key: Uint8Array) => log.push(`-${id}:${s(key)}`),
  };
  let o = await openStore(dir, { lessor });
  o.store.put(b("a"), b("1"), 5n);
  o.store.put(b("a"), b("2"), 6n);
  o.store.put(b("b"), b("1"), 6n);
  o.store.put(b("c"), b("1"), 7n);
  o.store.deleteRange(b("c"));
  assertEquals(log, ["+5:a", "-5:a", "+6:a", "+6:b", "+7:c", "-7:c"]);
  await o.close();
  log.length = 0;
  o = await openStore(dir, { lessor });
  assertEquals(log, ["+6:a", "+6:b"]);
  await o.close();
});

Deno.test("kvstore: write listeners get each txn's changes; one write txn at a time", async () => {
  const dir = await tempDir();
  const o = await openStore(dir);
  try {
    const seen: string[] = [];
    const off = o.store.addWriteListener((changes, rev) => {
      seen.push(`${rev}:` + changes.map((kv) => `${s(kv.key)}${kv.version === 0n ? "(del)" : ""}`).join(","));
    });
    const t = o.store.write();
    assertThrows(() => o.store.write(), (e: unknown) => /already open/.test(String(e)));
    t.put(b("x"), b("1"));
    t.put(b("y"), b("1"));
    t.end();
    o.store.deleteRange(b("x"), b("z"));
    o.store.deleteRange(b("nothing"));
    off();
    o.store.put(b("q"), b("1"));
    assertEquals(seen, ["2:x,y", "3:x(del),y(del)"]);
  } finally {
    await o.close();
  }
});
