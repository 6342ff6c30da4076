import { Buffer } from "node:buffer";
import { Backend } from "../../mvcc/backend.ts";
import type { KVStore } from "../../mvcc/kvstore.ts";
import { replayLog } from "../../mvcc/backend_log.ts";
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

Deno.test("kvstore: the consistent index is saved once per backend commit, with the data it covers", async () => {
  const dir = await tempDir();
  let o = await openStore(dir);
  const saved: number[] = [];
  const replayIndexes = async () => {
    saved.length = 0;
    const f = await Deno.open(o.backend.path, { read: true });
    try {
      await replayLog(o.backend.path, f, (await f.stat()).size, {
        put: (bk, p, ks, ke, vs, ve) => {
          if (bk === "meta" && s(p.subarray(ks, ke)) === "consistent_index") {
            saved.push(Buffer.from(p.subarray(vs, ve)).readUInt32BE(4));
          }
        },
        delete: () => {},
        createBucket: () => {},
        dropBucket: () => {},
      });
    } finally {
      f.close();
    }
  };
  try {
    for (let i = 1; i <= 100; i++) {
      o.store.setConsistentIndex(i, 2);
      o.store.put(b(`k${i}`), b("v"));
    }
    await o.store.commit();
    await replayIndexes();
    assertEquals(saved, [100], "one record: the last index of the batch");
    await o.store.commit();
    await replayIndexes();
    assertEquals(saved, [100], "an index that did not move is not written again");
    // an entry that writes nothing (a conf change) still moves the saved index at the next commit
    o.store.setConsistentIndex(101, 3);
    await o.store.commit();
    await o.close();
    o = await openStore(dir);
    assertEquals([o.store.consistentIndex, o.store.term], [101, 3]);
  } finally {
    await o.close();
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

/** Keys, updates, a txn, deletes and a finished compaction, then more writes left uncommitted. */
async function history(o: Awaited<ReturnType<typeof openStore>>): Promise<void> {
  for (let i = 0; i < 60; i++) o.store.put(b(`k${i % 9}`), b(`v${i}`), BigInt(i % 2));
  const t = o.store.write();
  t.put(b("t1"), b("x"));
  t.put(b("t2"), b("y"));
  t.deleteRange(b("t1"));
  t.end();
  o.store.deleteRange(b("k2"), b("k4"));
  await o.store.compact(40);
  o.store.put(b("k2"), b("back"));
  o.store.deleteRange(b("k5"));
}

Deno.test("kvstore: defrag writes exactly the live key bucket; hash and hashByRev equal across defrag and restart", async () => {
  const dir = await tempDir();
  let o = await openStore(dir);
  await history(o);
  const hash = o.store.hash(), hashKV = o.store.hashByRev(0), hashKV50 = o.store.hashByRev(50);
  const keys = (await committedKeys(o.backend, "key")).map((k) => k.join(","));
  const inUse = o.backend.sizeInUse();
  const before = o.store.range(b("a"), new Uint8Array([0]));
  await o.backend.defrag();
  assertEquals((await logKeys(o.backend.path, "key")).map((k) => k.join(",")), keys);
  assertEquals([o.store.hash(), o.store.hashByRev(0), o.store.hashByRev(50)], [hash, hashKV, hashKV50]);
  assertEquals(o.backend.sizeInUse(), inUse);
  await o.close();

  o = await openStore(dir);
  try {
    assertEquals([o.store.hash(), o.store.hashByRev(0), o.store.hashByRev(50)], [hash, hashKV, hashKV50]);
    assertEquals(o.store.range(b("a"), new Uint8Array([0])), before);
    assertEquals(o.backend.sizeInUse(), inUse, "live bytes replayed equal live bytes tracked");
  } finally {
    await o.close();
  }
});

Deno.test("kvstore: defrag during a compaction keeps the revisions it has yet to delete; the result reopens", async () => {
  const dir = await tempDir();
  let o = await openStore(dir, { compactionBatchLimit: 3, compactionSleepMs: 20 });
  for (let i = 0; i < 40; i++) o.store.put(b(`k${i % 4}`), b(`v${i}`));
  await o.backend.forceCommit();
  const done = o.store.compact(30);
  await new Promise((r) => setTimeout(r, 30));
  const hashKV = o.store.hashByRev(0);
  await o.backend.defrag();
  assert((await logKeys(o.backend.path, "key")).length > 4 + 10, "defrag ran before the compaction finished");
  assertEquals(o.store.hashByRev(0), hashKV);
  await done;
  const keys = (await committedKeys(o.backend, "key")).map((k) => new DataView(k.buffer, k.byteOffset).getUint32(4));
  assertEquals(keys, [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41]);
  const inUse = o.backend.sizeInUse();
  await o.close();
  o = await openStore(dir);
  try {
    assertEquals(o.backend.sizeInUse(), inUse);
    assertEquals(o.store.hashByRev(0), hashKV);
  } finally {
    await o.close();
  }
});

Deno.test("kvstore: a batch torn by a crash is dropped whole on restore", async () => {
  const dir = await tempDir();
  let o = await openStore(dir);
  await history(o);
  await o.backend.forceCommit();
  const hashKV = o.store.hashByRev(0), rev = o.store.rev, size = o.backend.size();
  const t = o.store.write();
  for (let i = 0; i < 20; i++) t.put(b(`torn${i}`), b("x"));
  t.deleteRange(b("k0"));
  t.end();
  await o.close();
  // Cut the last record short, as a crash during its append would.
  const f = await Deno.open(o.backend.path, { write: true });
  await f.truncate(size + 50);
  f.close();
  o = await openStore(dir);
  try {
    assertEquals([o.store.rev, o.store.hashByRev(0)], [rev, hashKV]);
    assertEquals(o.store.range(b("torn"), b("tornz")).count, 0);
    assertEquals(o.store.range(b("k0")).count, 1);
  } finally {
    await o.close();
  }
});

Deno.test("kvstore: keys and values are copied out of request buffers (node Buffer views too)", async () => {
  const dir = await tempDir();
  const o = await openStore(dir);
  try {
    const body = Buffer.alloc(4096);
    const view = (off: number, text: string) => {
      body.write(text, off);
      return body.subarray(off, off + text.length);
    };
    o.store.put(view(0, "key1"), view(10, "small"));
    o.store.put(view(100, "key1"), view(200, "second"));
    o.store.put(view(300, "key2"), view(2000, "x".repeat(1500)));
    o.store.put(view(400, "key3"), view(500, ""));
    body.fill(0);
    const r = o.store.range(b("key"), b("key9"));
    assertEquals(r.kvs.map((kv) => [s(kv.key), s(kv.value).slice(0, 6)]), [
      ["key1", "second"],
      ["key2", "xxxxxx"],
      ["key3", ""],
    ]);
    for (const kv of r.kvs) assert(kv.key.buffer !== body.buffer && kv.value.buffer !== body.buffer);
    assertEquals(s(o.store.range(b("key1"), undefined, { rev: 2 }).kvs[0].value), "small");
  } finally {
    await o.close();
  }
});

Deno.test("kvstore: a backend file's prefix taken by snapshotFile restores another store to that moment", async () => {
  const leaderDir = await tempDir(), followerDir = await tempDir();
  const leader = await openStore(leaderDir);
  const follower = await openStore(followerDir);
  try {
    for (let i = 0; i < 40; i++) {
      leader.store.setConsistentIndex(10 + i, 2);
      leader.store.put(b(`k${i % 5}`), b(`v${i}`));
    }
    await leader.store.compact(20);
    await leader.store.commit();
    const { file, size } = await leader.backend.snapshotFile();
    const hash = leader.store.hash(), rev = leader.store.rev;
    const at = leader.store.range(b("k"), new Uint8Array([0]));
    // later writes and a defrag (a file renamed over the path) do not reach the prefix taken
    leader.store.put(b("later"), b("x"));
    await leader.backend.defrag();
    const db = new Uint8Array(size);
    let got = 0;
    while (got < size) got += (await file.read(db.subarray(got)))!;
    file.close();

    // the follower takes it in place of its own backend, as a follower installs a leader's snapshot
    follower.store.put(b("mine"), b("gone"));
    await follower.store.close();
    await follower.backend.close();
    await Deno.writeFile(`${followerDir}/member/snap/db`, db);
    const be = await Backend.openDataDir(followerDir);
    follower.store.restore(be);
    follower.close = async () => {
      await follower.store.close();
      await be.close();
    };
    assertEquals(follower.store.rev, rev);
    assertEquals(follower.store.compactMainRev, 20);
    assertEquals(follower.store.consistentIndex, 49);
    assertEquals(follower.store.hash(), hash);
    assertEquals(follower.store.range(b("k"), new Uint8Array([0])), at);
    assertEquals(follower.store.range(b("mine")).count, 0);
    assertEquals(follower.store.put(b("next"), b("1")), rev + 1);
  } finally {
    await leader.close();
    await follower.close();
  }
});

/** Everything a reader can see of a store: every key at every revision since the compaction, history, hashes. */
function observe(store: KVStore, lessorLog: string[]) {
  const all = { key: new Uint8Array([0]), end: new Uint8Array([0]) };
  const at: unknown[] = [];
  for (let rev = Math.max(store.compactMainRev, 1); rev <= store.rev; rev++) {
    at.push(store.range(all.key, all.end, { rev }).kvs.map((kv) => ({ ...kv })));
  }
  const changes: unknown[] = [];
  store.forEachChange(store.compactMainRev + 1, store.rev, (kv) => void changes.push({ ...kv }));
  // and windows of it, as watchers catching up read them: from a revision to a few past it, or stopping early
  for (let rev = store.compactMainRev + 1; rev <= store.rev; rev += 7) {
    let n = 0;
    store.forEachChange(rev, rev + 2, (kv) => {
      changes.push(`${rev}: ${s(kv.key)}@${kv.modRevision} v${kv.version}`);
      return ++n < 5;
    });
  }
  const hashes = [0, store.rev, store.compactMainRev + 1].map((r) => store.hashByRev(r));
  return {
    rev: store.rev,
    compacted: store.compactMainRev,
    at,
    changes,
    hashes,
    hash: store.hash().hash,
    leases: [...lessorLog].sort(),
  };
}

Deno.test("kvstore: a restarted store (revisions decoded when read) answers as the one before the restart", async () => {
  for (const seed of [1, 2, 3]) {
    let x = seed;
    const rand = (n: number) => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
    const dir = await tempDir();
    const attached = new Map<string, bigint>();
    const lessor = {
      attach: (id: bigint, key: Uint8Array) => void attached.set(s(key), id),
      detach: (_id: bigint, key: Uint8Array) => void attached.delete(s(key)),
    };
    const leases = () => [...attached].map(([k, id]) => `${id}:${k}`);
    let o = await openStore(dir, { lessor });
    const writes = (n: number) => {
      for (let i = 0; i < n; i++) {
        const op = rand(10);
        if (op < 6) o.store.put(b(`k${rand(40)}`), b(`v${i}-${"x".repeat(rand(50))}`), BigInt(rand(3)));
        else if (op < 8) o.store.deleteRange(b(`k${rand(40)}`));
        else {
          const t = o.store.write();
          try {
            for (let j = 0; j < 1 + rand(3); j++) t.put(b(`k${rand(40)}`), b(`t${i}.${j}`), 0n);
            if (rand(2) === 0) t.deleteRange(b(`k${rand(40)}`));
          } finally {
            t.end();
          }
        }
      }
    };
    try {
      for (let round = 0; round < 3; round++) {
        writes(150);
        if (round > 0) await o.store.compact(o.store.rev - 40 - rand(20));
        const before = observe(o.store, leases());
        await o.close();
        attached.clear();
        o = await openStore(dir, { lessor });
        assertEquals(observe(o.store, leases()), before, `seed ${seed} round ${round}`);
        // and what the backend holds of it is written back the same: a defrag re-encodes the key bucket
        await o.backend.defrag();
      }
    } finally {
      await o.close();
    }
  }
});

Deno.test("kvstore: a restored key's one revision answers for it, then takes writes as its keyIndex would", async () => {
  const dir = await tempDir();
  const attached = new Map<string, bigint>();
  const lessor = {
    attach: (id: bigint, key: Uint8Array) => void attached.set(s(key), id),
    detach: (_id: bigint, key: Uint8Array) => void attached.delete(s(key)),
  };
  let o = await openStore(dir, { lessor });
  const kv = (key: string, rev?: number) => {
    const r = o.store.range(b(key), undefined, { rev });
    return r.kvs.map((kv) => [s(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease]);
  };
  try {
    o.store.put(b("a"), b("a1")); // 2
    o.store.put(b("a"), b("a2"), 7n); // 3: a's revisions compacted below leave it one, created at 2
    o.store.put(b("b"), b("b1")); // 4
    const t = o.store.write(); // 5: a txn's second put, (5, 1)
    t.put(b("c"), b("c0"), 0n);
    t.put(b("d"), b("d1"), 0n);
    t.end();
    await o.store.compact(4);
    await o.close();
    attached.clear();
    o = await openStore(dir, { lessor });
    assertEquals(kv("a"), [["a2", 2n, 3n, 2n, 7n]]);
    assertEquals(kv("a", 4), [["a2", 2n, 3n, 2n, 7n]]);
    assertEquals(kv("b"), [["b1", 4n, 4n, 1n, 0n]]);
    assertEquals(kv("d"), [["d1", 5n, 5n, 1n, 0n]]);
    assertEquals(kv("d", 4), []);
    assertThrows(() => o.store.range(b("a"), undefined, { rev: 3 }), (e: unknown) => e === ErrCompacted);
    assertEquals(o.store.range(b("a"), b("e"), { countOnly: true }).count, 4);
    assertEquals([...attached], [["a", 7n]]);
    const changes: string[] = [];
    o.store.forEachChange(4, 5, (c) => void changes.push(`${s(c.key)}@${c.modRevision}`));
    assertEquals(changes, ["b@4", "c@5", "d@5"]);
    // writes: a put continues the key's generation, a delete ends it, a txn's put at sub 1 as well
    assertEquals(o.store.put(b("a"), b("a3")), 6);
    assertEquals(kv("a"), [["a3", 2n, 6n, 3n, 0n]]);
    assertEquals(kv("a", 5), [["a2", 2n, 3n, 2n, 7n]]);
    assertEquals(attached.size, 0);
    assertEquals(o.store.deleteRange(b("b"), b("c")), { deleted: 1, rev: 7 });
    assertEquals(kv("b"), []);
    assertEquals(kv("b", 6), [["b1", 4n, 4n, 1n, 0n]]);
    assertEquals(o.store.put(b("d"), b("d2")), 8);
    assertEquals(kv("d"), [["d2", 5n, 8n, 2n, 0n]]);
    // a compaction past them: b's history goes, a and d keep their newest, c its one revision
    await o.store.compact(8);
    const all = o.store.range(b("a"), new Uint8Array([0]));
    assertEquals(all.kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}@${kv.modRevision}`), ["a=a3@6", "c=c0@5", "d=d2@8"]);
    const hash = o.store.hash();
    await o.close();
    o = await openStore(dir, { lessor });
    assertEquals(o.store.hash(), hash);
    assertEquals(kv("c"), [["c0", 5n, 5n, 1n, 0n]]);
  } finally {
    await o.close();
  }
});
