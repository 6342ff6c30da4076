import { Backend, BUCKET } from "../../mvcc/backend.ts";
import { CorruptLogError, MAGIC, peekLastPut } from "../../mvcc/backend_log.ts";
import { assert, assertEquals, assertRejects, assertThrows, b, s, tempDir } from "./helpers.ts";

async function open(dir: string, opts = {}) {
  return await Backend.openDataDir(dir, opts);
}
const dbPath = (dir: string) => `${dir}/member/snap/db`;
const dump = (be: Backend, bucket: string) => {
  const out: string[] = [];
  be.forEach(bucket, (k, v) => {
    out.push(`${s(k)}=${s(v)}`);
  });
  return out;
};

Deno.test("backend: write, commit, reopen; standard buckets; ordered range", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  for (const name of Object.values(BUCKET)) assert(be.hasBucket(name), name);
  be.put("key", b("b"), b("2"));
  be.put("key", b("a"), b("1"));
  be.put("key", b("c"), b("3"));
  be.put("meta", b("x"), b("y"));
  assert(be.delete("key", b("c")));
  assert(!be.delete("key", b("zz")));
  be.createBucket("custom");
  be.put("custom", b("k"), b("v"));
  await be.forceCommit();
  assertEquals(be.pendingOps, 0);
  await be.close();

  be = await open(dir);
  try {
    assertEquals(dump(be, "key"), ["a=1", "b=2"]);
    assertEquals(dump(be, "custom"), ["k=v"]);
    assertEquals(s(be.get("meta", b("x"))!), "y");
    assertEquals(be.range("key", b("a"), b("b")).keys.map(s), ["a"]);
    assertEquals(be.range("key", b("a"), undefined, 1).keys.map(s), ["a"]);
    assertEquals(be.size(), (await Deno.stat(dbPath(dir))).size);
  } finally {
    await be.close();
  }
});

Deno.test("backend: a value written in place into a detached bucket's log replays as a put", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  be.detach("key", { forEach: () => {} });
  const scratch = b("k1");
  be.putWith("key", scratch, 3, (buf, pos) => {
    buf.set(b("abc"), pos);
    return pos + 3;
  });
  scratch.set(b("k2")); // the key was copied: the scratch may be used again
  be.putWith("key", scratch, 0, (_, pos) => pos);
  // a value that does not fill its size is refused, the record taken back: the log stays readable
  const refused = (re: RegExp) => (e: unknown) => re.test(String(e));
  assertThrows(() => be.putWith("key", scratch, 2, (_, pos) => pos + 1), refused(/sized 2 bytes was written as 1/));
  assertThrows(() => be.putWith("meta", scratch, 0, (_, pos) => pos), refused(/not detached/));
  await be.close();
  be = await open(dir);
  try {
    assertEquals(dump(be, "key"), ["k1=abc", "k2="]);
  } finally {
    await be.close();
  }
});

// Waits for the file to grow; the deadline only bounds a broken backend, it is not what the test measures.
async function grows(be: Backend, from: number): Promise<boolean> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if (be.size() > from) return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

Deno.test("backend: close commits pending writes; batch limit and interval commit on their own", async () => {
  const dir = await tempDir();
  // An interval nobody waits for: only the batch limit can commit here.
  let be = await open(dir, { batchInterval: 3_600_000, batchLimit: 10 });
  await be.forceCommit(); // a new data dir starts with its buckets' creation pending
  const s0 = be.size();
  for (let i = 0; i < 10; i++) be.put("key", b(`k${i}`), b("v"));
  assert(await grows(be, s0), "batch limit commits without waiting for the interval");
  await be.close();
  // A limit never reached: only the interval can commit here.
  be = await open(dir, { batchInterval: 20, batchLimit: 1_000_000 });
  await be.forceCommit();
  const s1 = be.size();
  be.put("key", b("late"), b("v"));
  assert(await grows(be, s1), "interval commit");
  be.put("key", b("atclose"), b("v"));
  await be.close();
  be = await open(dir);
  assertEquals(be.count("key"), 12);
  await be.close();
});

Deno.test("backend: a torn last batch is dropped whole and the file repaired", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  be.put("key", b("first"), b("1"));
  await be.forceCommit();
  const goodSize = be.size();
  for (let i = 0; i < 100; i++) be.put("key", b(`batch2-${i}`), b("x".repeat(50)));
  await be.close();
  const full = (await Deno.stat(dbPath(dir))).size;
  assert(full > goodSize);

  // Cut the second record at several points: header, middle of payload, one byte short.
  for (const cut of [goodSize + 5, goodSize + 100, full - 1]) {
    const data = await Deno.readFile(dbPath(dir));
    const d2 = `${dir}/cut${cut}`;
    await Deno.mkdir(`${d2}/member/snap`, { recursive: true });
    await Deno.writeFile(dbPath(d2), data.subarray(0, cut));
    be = await open(d2);
    assertEquals(dump(be, "key"), ["first=1"], `cut at ${cut}`);
    assertEquals(be.size(), goodSize);
    assertEquals((await Deno.stat(dbPath(d2))).size, goodSize, "torn tail truncated");
    be.put("key", b("after"), b("2"));
    await be.close();
    be = await open(d2);
    assertEquals(dump(be, "key"), ["after=2", "first=1"]);
    await be.close();
  }
});

Deno.test("backend: opened unloaded it is empty and refuses writes; an aborted load changes nothing; load replays", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  // > 2 read chunks of 4 MiB, then a torn record at the end
  const value = "v".repeat(1000);
  for (let i = 0; i < 10_000; i++) {
    be.put("key", b(`k${String(i).padStart(5, "0")}`), b(value));
    if (i % 1000 === 999) await be.forceCommit(); // records of ~1 MB
  }
  await be.close();
  const intact = (await Deno.stat(dbPath(dir))).size;
  const f = await Deno.open(dbPath(dir), { append: true });
  await f.write(new Uint8Array([9, 0, 0, 0, 1, 2]));
  f.close();
  const torn = (await Deno.stat(dbPath(dir))).size;

  be = await Backend.openUnloaded(dbPath(dir));
  try {
    assert(!be.loaded);
    for (const name of Object.values(BUCKET)) assertEquals(be.count(name), 0, name);
    assertThrows(() => be.put("key", b("a"), b("1")), (e) => String(e).includes("backend: write before load"));
    await assertRejects(() => be.forceCommit(), (e) => String(e).includes("backend: not loaded"));
    // held before its second read, then ended there: the replay had begun
    let reads = 0;
    const held = Promise.withResolvers<void>();
    const loading = be.load(() => {
      if (++reads === 2) return held.promise;
    });
    for (let i = 0; i < 100 && reads < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assertEquals(reads, 2);
    assert(!be.loaded, "held");
    held.reject(new Error("superseded"));
    await assertRejects(() => loading, (e) => String(e).includes("superseded"));
    assertEquals(reads, 2);
    assert(!be.loaded);
    assertEquals(be.count("key"), 0);
    assertEquals((await Deno.stat(dbPath(dir))).size, torn, "an aborted load repairs nothing");
    reads = 0;
    await be.load(() => void reads++);
    assert(be.loaded);
    assert(reads >= 3, `${reads} reads`);
    assertEquals(be.count("key"), 10_000);
    assertEquals((await Deno.stat(dbPath(dir))).size, intact, "the torn record is cut");
    await assertRejects(() => be.load(), (e) => String(e).includes("backend: already loaded"));
    be.put("key", b("a"), b("1"));
  } finally {
    await be.close();
  }
  be = await open(dir);
  assertEquals(be.count("key"), 10_001);
  await be.close();
});

Deno.test("backend: zero-filled tail is treated as torn", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  be.put("key", b("a"), b("1"));
  await be.close();
  const f = await Deno.open(dbPath(dir), { append: true });
  await f.write(new Uint8Array(4096));
  f.close();
  be = await open(dir);
  assertEquals(dump(be, "key"), ["a=1"]);
  await be.close();
});

Deno.test("backend: damage before the end is a clear error", async () => {
  const dir = await tempDir();
  const be = await open(dir);
  be.put("key", b("a"), b("value-one"));
  await be.forceCommit();
  be.put("key", b("b"), b("value-two"));
  await be.close();
  const data = await Deno.readFile(dbPath(dir));
  const corrupt = data.slice();
  corrupt[MAGIC.length + 12 + 3] ^= 0xff; // a payload byte of the first record
  await Deno.writeFile(dbPath(dir), corrupt);
  await assertRejects(() => open(dir), (e) => e instanceof CorruptLogError && /checksum mismatch/.test(String(e)));
  const badLen = data.slice();
  badLen[MAGIC.length] ^= 0x01; // the first record's length no longer matches its check copy
  await Deno.writeFile(dbPath(dir), badLen);
  await assertRejects(() => open(dir), (e) => e instanceof CorruptLogError && /bad record header/.test(String(e)));
  const badMagic = data.slice();
  badMagic[0] = 0x41;
  await Deno.writeFile(dbPath(dir), badMagic);
  await assertRejects(() => open(dir), (e) => e instanceof CorruptLogError && /bad magic/.test(String(e)));
});

Deno.test("backend: peekLastPut reads a key's last value from the log's end, as a replay leaves it", async () => {
  const dir = await tempDir();
  const peek = async (d = dir, key = "ci") => {
    const v = await peekLastPut(dbPath(d), "meta", b(key));
    return v === undefined ? undefined : s(v);
  };
  // what a replay of the same file gives, for every case below
  const replayed = async (d = dir, key = "ci") => {
    const be = await open(d);
    const v = be.get("meta", b(key));
    await be.close();
    return v === undefined ? undefined : s(v);
  };
  assertEquals(await peek(), undefined, "no file");
  let be = await open(dir);
  be.put("meta", b("ci"), b("1"));
  await be.forceCommit();
  // records after it that do not write the key: the walk goes back past them
  for (let i = 0; i < 5; i++) {
    be.put("key", b(`k${i}`), b("x".repeat(100)));
    await be.forceCommit();
  }
  be.put("meta", b("ci"), b("2"));
  be.put("meta", b("other"), b("o"));
  be.put("meta", b("ci"), b("3")); // the last put of a record wins
  await be.forceCommit();
  be.put("key", b("tail"), b("t"));
  be.put("meta", b("ci"), b("4"));
  await be.close();
  assertEquals(await peek(), "4");
  assertEquals(await replayed(), "4");
  assertEquals(await peek(dir, "missing"), undefined);

  // the last record torn (cut short, or its bytes damaged): a replay drops it, the peek reads the one before
  const data = await Deno.readFile(dbPath(dir));
  const torn: [string, Uint8Array][] = [["cut", data.subarray(0, data.length - 3)], [
    "crc",
    flip(data, data.length - 2),
  ]];
  for (const [name, bytes] of torn) {
    const d = `${dir}/${name}`;
    await Deno.mkdir(`${d}/member/snap`, { recursive: true });
    await Deno.writeFile(dbPath(d), bytes);
    assertEquals(await peek(d), "3", name);
    assertEquals(await replayed(d), "3", name);
  }
  // a zero-filled tail after the records
  const zeros = `${dir}/zeros`;
  await Deno.mkdir(`${zeros}/member/snap`, { recursive: true });
  await Deno.writeFile(dbPath(zeros), new Uint8Array([...data, ...new Uint8Array(4096)]));
  assertEquals(await peek(zeros), "4");
  // damage in a record the walk decodes that is not the last: the peek says nothing (a replay throws there)
  be = await open(dir);
  be.put("key", b("more"), b("m")); // a last record without the key: the walk goes back to the damaged one
  await be.close();
  const more = (await Deno.readFile(dbPath(dir))).subarray(data.length);
  const damaged = `${dir}/damaged`;
  await Deno.mkdir(`${damaged}/member/snap`, { recursive: true });
  await Deno.writeFile(dbPath(damaged), new Uint8Array([...flip(data, data.length - 2), ...more]));
  assertEquals(await peek(damaged), undefined);
  await assertRejects(() => replayed(damaged), (e) => e instanceof CorruptLogError);

  // deleted, then a defrag's rewrite: as the replay
  be = await open(dir);
  be.delete("meta", b("ci"));
  await be.close();
  assertEquals(await peek(), undefined);
  be = await open(dir);
  be.put("meta", b("ci"), b("5"));
  await be.defrag();
  await be.close();
  assertEquals(await peek(), "5");
  assertEquals(await replayed(), "5");
  assertEquals(await peek(dir, "other"), "o");
});

/** A copy of `data` with the byte at `at` flipped. */
function flip(data: Uint8Array, at: number): Uint8Array {
  const c = data.slice();
  c[at] ^= 0xff;
  return c;
}

Deno.test("backend: defrag keeps data, shrinks the file, survives reopen", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  for (let i = 0; i < 2000; i++) {
    be.put("key", b(`k${i % 10}`), b(`value-${i}`));
    if (i % 100 === 0) await be.forceCommit();
  }
  be.delete("key", b("k9"));
  await be.forceCommit();
  const before = be.size();
  const live = dump(be, "key");
  const hash = be.hash();
  await be.defrag();
  assert(be.size() < before / 10, `${be.size()} vs ${before}`);
  assertEquals(be.size(), (await Deno.stat(dbPath(dir))).size);
  assert(Math.abs(be.size() - be.sizeInUse()) < 200, `${be.size()} vs in use ${be.sizeInUse()}`);
  assertEquals(dump(be, "key"), live);
  be.put("key", b("post"), b("defrag"));
  await be.close();
  be = await open(dir);
  assertEquals(dump(be, "key"), [...live, "post=defrag"].sort());
  be.delete("key", b("post"));
  assertEquals(be.hash(), hash);
  await be.close();
});

Deno.test("backend: the log is rewritten automatically once garbage dominates", async () => {
  const dir = await tempDir();
  const be = await open(dir, { autoDefragMinBytes: 64 * 1024 });
  try {
    let maxSize = 0;
    for (let i = 0; i < 3000; i++) {
      be.put("key", b(`k${i % 5}`), b("x".repeat(100)));
      if (i % 50 === 0) {
        await be.forceCommit();
        maxSize = Math.max(maxSize, be.size());
      }
    }
    await be.forceCommit();
    await be.forceCommit(); // waits for a defrag queued by the previous commit
    assert(maxSize <= 64 * 1024 + 8 * 1024, `log grew to ${maxSize}`);
    assertEquals(be.count("key"), 5);
  } finally {
    await be.close();
  }
});

Deno.test("backend: dbSize follows what etcd's bbolt would take: pages at commits, down only by a defrag", async () => {
  const be = await open(await tempDir(), { batchInterval: 60_000 });
  try {
    const empty = be.dbSize();
    assert(empty >= 4 * 4096, `an empty bbolt file has 4 pages, got ${empty}`);
    const big = new Uint8Array(4096).fill(120);
    for (let i = 0; i < 10; i++) be.put(BUCKET.meta, b(`big${i}`), big);
    assertEquals(be.dbSize(), empty, "moves when a transaction commits");
    await be.forceCommit();
    const full = be.dbSize();
    // two pages each, less what bbolt reuses of the pages copy-on-write frees
    assert(full - empty >= 10 * 6000 && full - empty <= 10 * 8192, `grew by ${full - empty}`);
    assert(be.dbSizeInUse() <= full);
    for (let i = 0; i < 10; i++) be.delete(BUCKET.meta, b(`big${i}`));
    await be.forceCommit();
    assertEquals(be.dbSize(), full, "deletes free pages but do not shrink the file");
    assert(be.dbSizeInUse() < full - 50_000);
    await be.defrag();
    assertEquals(be.dbSize(), Math.max(empty, be.size()), "a defrag gives the space back");
  } finally {
    await be.close();
  }
});

Deno.test("backend: a replay keeps views of its read chunks, each read once: every value intact across chunks", async () => {
  const dir = await tempDir();
  let be = await open(dir);
  // ~6 MiB in records of 8 puts: chunks of 4 MiB end inside records, whose start is carried into the next chunk
  const value = (i: number) => new Uint8Array(300 + (i % 7)).fill(i & 0xff);
  for (let i = 0; i < 20000; i++) {
    be.put("meta", b(`k${String(i).padStart(6, "0")}`), value(i));
    if (i % 8 === 7) await be.forceCommit();
  }
  const big = new Uint8Array(5 * 1024 * 1024).fill(7); // a record longer than a chunk
  be.put("meta", b("big"), big);
  await be.close();
  assert((await Deno.stat(dbPath(dir))).size > 10 * 1024 * 1024);
  be = await open(dir);
  try {
    const buffers = new Set<ArrayBufferLike>();
    let n = 0;
    be.forEach("meta", (k, v) => {
      buffers.add(k.buffer).add(v.buffer);
      if (s(k) === "big") return void assertEquals(v, big);
      assertEquals(v, value(Number(s(k).slice(1))), s(k));
      n++;
    });
    assertEquals(n, 20000);
    // views of a few chunks (not an array per key and value), none of which was read into twice (values intact)
    assert(buffers.size <= 5, `${buffers.size} buffers`);
  } finally {
    await be.close();
  }
});
