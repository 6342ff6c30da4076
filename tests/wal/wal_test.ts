import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import type { Entry, HardState } from "../../raft/types.ts";
import { bytesEqual } from "../../mvcc/bytes.ts";
import { WalError } from "../../wal/errors.ts";
import { WAL } from "../../wal/wal.ts";
import { captureLogger, ents, withTempDir } from "./helpers.ts";

const META = new TextEncoder().encode("cluster-1/member-2");

async function walFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("wal: create, save many batches, reopen, readAll returns it all", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    let index = 0;
    for (let batch = 1; batch <= 50; batch++) {
      const es = ents(index + 1, index + batch, 2);
      index += batch;
      await w.save({ term: 2, vote: 1n, commit: index - 1 }, es);
    }
    await w.close();
    assertEquals(await walFiles(dir), ["0000000000000000-0000000000000000.wal"]);

    const r = await WAL.open(dir, { index: 0, term: 0 });
    const got = await r.readAll();
    assertEquals(got.metadata, META);
    assertEquals(got.hardState, { term: 2, vote: 1n, commit: index - 1 });
    assertEquals(got.entries, ents(1, index, 2));
    // Still writable after the replay, and the appended entries survive another reopen.
    await r.save({ term: 3, vote: 2n, commit: index }, ents(index + 1, index + 3, 3));
    await r.close();
    const r2 = await WAL.open(dir, { index: 0, term: 0 });
    // a visitor sees every entry, in order, its data readable then; `after` then leaves out the entries up to the index
    // it gives, told the hard state and the last index
    const all = [...ents(1, index, 2), ...ents(index + 1, index + 3, 3)];
    const seen: Omit<Entry, "term">[] = [];
    const asked: [HardState, number][] = [];
    const got2 = await r2.readAll(
      (i, type, buf, start, end) => seen.push({ index: i, type, data: buf.slice(start, end) }),
      (hs, last) => {
        asked.push([{ ...hs }, last]);
        return index;
      },
    );
    assertEquals(seen, all.map(({ index, type, data }) => ({ index, type, data })));
    assertEquals(asked, [[{ term: 3, vote: 2n, commit: index }, index + 3]]);
    assertEquals(got2.entries, ents(index + 1, index + 3, 3));
    assertEquals(got2.prev, { index, term: 2 });
    assertEquals(got2.hardState, { term: 3, vote: 2n, commit: index });
    await r2.close();
    // without `after`, every entry after the snapshot opened at
    const r3 = await WAL.open(dir, { index: 0, term: 0 });
    const got3 = await r3.readAll();
    assertEquals(got3.entries, all);
    assertEquals(got3.prev, { index: 0, term: 0 });
    await r3.close();
  });
});

Deno.test("wal: a batch larger than a write piece (1 MiB) is written whole, in order, and appending goes on after it", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    const big = ents(1, 3000, 2, 1000); // ~3 MB: three pieces and a rest
    await w.save({ term: 2, vote: 1n, commit: 3000 }, big);
    await w.save({ term: 2, vote: 1n, commit: 3001 }, ents(3001, 3001, 2));
    await w.close();
    const r = await WAL.open(dir, { index: 0, term: 0 });
    const got = await r.readAll();
    // compared entry by entry: a failing deep comparison of ~3 MB of entries builds a diff that exhausts memory
    const want = [...big, ...ents(3001, 3001, 2)];
    assertEquals(got.entries.length, want.length);
    const differs = want.findIndex((e, i) => {
      const g = got.entries[i];
      return g.index !== e.index || g.term !== e.term || g.type !== e.type || !bytesEqual(g.data, e.data);
    });
    assertEquals(differs, -1);
    assertEquals(got.hardState, { term: 2, vote: 1n, commit: 3001 });
    await r.close();
  });
});

Deno.test("wal: create refuses a directory that already holds a WAL", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    await (await WAL.create(dir, META)).close();
    await rejects(WAL.create(dir, META), /wal: directory already holds a WAL/);
    await rejects(WAL.open(join(root, "nothing-here"), { index: 0, term: 0 }), Deno.errors.NotFound);
  });
});

Deno.test("wal: later entries overwrite a conflicting suffix by index", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    await w.save({ term: 1, vote: 1n, commit: 2 }, ents(1, 10, 1));
    // A new leader at term 2 replaces everything from index 6 on.
    await w.save({ term: 2, vote: 3n, commit: 5 }, ents(6, 8, 2));
    await w.close();
    const r = await WAL.open(dir, { index: 0, term: 0 });
    const { entries } = await r.readAll();
    assertEquals(entries, [...ents(1, 5, 1), ...ents(6, 8, 2)]);
    await r.close();
  });
});

Deno.test("wal: replayed entries keep their data, empty or not, across segments and a rewritten suffix", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const opts = { segmentBytes: 8 * 1024 };
    // every seventh entry without data (a leader's empty entry), the others of varied sizes
    const made = (lo: number, hi: number, term: number) =>
      ents(lo, hi, term).map((e) => ({
        ...e,
        data: e.index % 7 === 0 ? new Uint8Array(0) : ents(e.index, e.index, term, 8 + (e.index * 37) % 300)[0].data,
      }));
    const w = await WAL.create(dir, META, opts);
    for (let i = 1; i <= 200; i += 20) await w.save({ term: 1, vote: 1n, commit: i + 19 }, made(i, i + 19, 1));
    await w.saveSnapshot({ index: 60, term: 1 });
    // a new leader at term 2 replaces everything from 150 on, in a later segment
    await w.save({ term: 2, vote: 2n, commit: 150 }, made(150, 230, 2));
    await w.close();
    ok((await walFiles(dir)).filter((n) => n.endsWith(".wal")).length >= 4, "several segments");
    const want = [...made(1, 149, 1), ...made(150, 230, 2)];
    for (const at of [{ index: 0, term: 0 }, { index: 60, term: 1 }]) {
      const r = await WAL.open(dir, at, opts, await WAL.scan(dir));
      assertEquals((await r.readAll()).entries, want.filter((e) => e.index > at.index));
      await r.close();
    }
  });
});

Deno.test("wal: segments are cut at segmentBytes and reopen reads across them", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const { lines, logger } = captureLogger();
    const opts = { segmentBytes: 16 * 1024, logger };
    const w = await WAL.create(dir, META, opts);
    for (let i = 1; i <= 400; i += 4) await w.save({ term: 1, vote: 1n, commit: i }, ents(i, i + 3, 1, 200));
    await w.close();
    const names = (await walFiles(dir)).filter((n) => n.endsWith(".wal"));
    ok(names.length >= 5, `expected several segments, got ${names}`);
    assertEquals(await walFiles(dir), names, "the prepared .tmp file is removed on close");
    assertEquals(names[0], "0000000000000000-0000000000000000.wal");
    // Each segment is named by its sequence and the first index it may hold.
    for (let i = 1; i < names.length; i++) ok(names[i].startsWith(i.toString(16).padStart(16, "0") + "-"));
    ok(lines.some((l) => l.msg === "wal: created a new segment"));
    // Sealed segments are trimmed to their content; only the tail stays preallocated.
    for (const n of names.slice(0, -1)) ok((await Deno.stat(join(dir, n))).size < 16 * 1024 + 2048);

    const r = await WAL.open(dir, { index: 0, term: 0 }, opts);
    const got = await r.readAll();
    assertEquals(got.entries, ents(1, 400, 1, 200));
    assertEquals(got.hardState, { term: 1, vote: 1n, commit: 397 });
    await r.close();
  });
});

Deno.test("wal: open at a snapshot skips older entries and older segments", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const opts = { segmentBytes: 8 * 1024 };
    const w = await WAL.create(dir, META, opts);
    for (let i = 1; i <= 200; i += 10) await w.save({ term: 1, vote: 1n, commit: i + 9 }, ents(i, i + 9, 1, 100));
    await w.saveSnapshot({ index: 150, term: 1 });
    await w.save({ term: 1, vote: 1n, commit: 205 }, ents(201, 205, 1, 100));
    await w.close();

    const r = await WAL.open(dir, { index: 150, term: 1 }, opts);
    const got = await r.readAll();
    assertEquals(got.entries, ents(151, 205, 1, 100));
    await r.close();
    // A snapshot the WAL never recorded, or recorded with another term, is refused.
    const bad = await WAL.open(dir, { index: 120, term: 1 }, opts);
    await rejects(bad.readAll(), /wal: snapshot not found/);
    await bad.close().catch(() => {});
    const mism = await WAL.open(dir, { index: 150, term: 2 }, opts);
    await rejects(mism.readAll(), /wal: snapshot mismatch/);
    await mism.close().catch(() => {});
    assertEquals(await WAL.validSnapshotEntries(dir), [{ index: 0, term: 0 }, { index: 150, term: 1 }]);
  });
});

Deno.test("wal: validSnapshotEntries leaves out markers above the committed index", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    await w.save({ term: 1, vote: 1n, commit: 5 }, ents(1, 10));
    await w.saveSnapshot({ index: 5, term: 1 });
    await w.saveSnapshot({ index: 9, term: 1 });
    await w.close();
    assertEquals(await WAL.validSnapshotEntries(dir), [{ index: 0, term: 0 }, { index: 5, term: 1 }]);
  });
});

async function buildWal(dir: string, size = 100): Promise<void> {
  const w = await WAL.create(dir, META);
  for (let i = 1; i <= 100; i += 10) await w.save({ term: 1, vote: 1n, commit: i }, ents(i, i + 9, 1, size));
  await w.close();
}

/** Offset just past the last record: the start of the preallocated zeros. */
async function contentEnd(path: string): Promise<number> {
  const b = await Deno.readFile(path);
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return end;
}

Deno.test("wal: a tail truncated mid-record is cut off, logged, and the WAL stays writable", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    await buildWal(dir);
    const seg = join(dir, "0000000000000000-0000000000000000.wal");
    const end = await contentEnd(seg);
    await Deno.truncate(seg, end - 50); // the last entry record loses its tail

    const { lines, logger } = captureLogger();
    let syncs = 0;
    const onFsync = () => void syncs++;
    const r = await WAL.open(dir, { index: 0, term: 0 }, { logger, onFsync });
    const got = await r.readAll();
    assertEquals(got.entries, ents(1, 99, 1, 100));
    assertEquals(syncs, 1, "the repair (the tail zeroed) is synced");
    const warn = lines.find((l) => l.msg === "wal: repaired torn tail");
    ok(warn, "the repair is logged");
    assertEquals(warn.fields?.segment, "0000000000000000-0000000000000000.wal");
    await r.save({ term: 2, vote: 1n, commit: 99 }, ents(100, 101, 2, 100));
    await r.close();

    syncs = 0;
    const r2 = await WAL.open(dir, { index: 0, term: 0 }, { logger, onFsync });
    assertEquals((await r2.readAll()).entries, [...ents(1, 99, 1, 100), ...ents(100, 101, 2, 100)]);
    assertEquals(syncs, 0, "a clean tail is left as it is");
    await r2.close();
    assertEquals(lines.filter((l) => l.msg === "wal: repaired torn tail").length, 1, "repaired once, then clean");
  });
});

for (const [what, back] of [["inside the last batch", 3000], ["at the head of the last batch", 10 * 1040]] as const) {
  Deno.test(`wal: a zeroed sector ${what} (a torn write into preallocated space) is repaired`, async () => {
    await withTempDir(async (root) => {
      const dir = join(root, "wal");
      await buildWal(dir, 1000);
      const seg = join(dir, "0000000000000000-0000000000000000.wal");
      const end = await contentEnd(seg);
      const b = await Deno.readFile(seg);
      // The disk lost one sector of the last, unsynced write; the sectors after it landed.
      const sector = Math.floor((end - back) / 512) * 512;
      b.fill(0, sector, sector + 512);
      await Deno.writeFile(seg, b);

      const { lines, logger } = captureLogger();
      const r = await WAL.open(dir, { index: 0, term: 0 }, { logger });
      const got = await r.readAll();
      ok(got.entries.length >= 90 && got.entries.length < 100, `kept ${got.entries.length} entries`);
      assertEquals(got.entries, ents(1, got.entries.length, 1, 1000));
      ok(lines.some((l) => l.msg === "wal: repaired torn tail"), "the repair is logged");
      await r.close();
      // The repair zeroed everything past the last good record.
      ok(await contentEnd(seg) <= sector);
    });
  });
}

Deno.test("wal: a flipped byte mid-WAL is a crc mismatch error, never skipped", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    await buildWal(dir);
    const seg = join(dir, "0000000000000000-0000000000000000.wal");
    const b = await Deno.readFile(seg);
    const mid = Math.floor((await contentEnd(seg)) / 2);
    b[mid] ^= 0x01;
    await Deno.writeFile(seg, b);

    const r = await WAL.open(dir, { index: 0, term: 0 });
    await rejects(r.readAll(), (e) => e instanceof WalError && /^wal: crc mismatch/.test(e.message));
    // The WAL is poisoned afterwards: nothing may be appended to a log that failed to replay.
    await rejects(r.save({ term: 1, vote: 1n, commit: 1 }, []), /unusable after an earlier failure/);
    await r.close();
    assertEquals((await Deno.readFile(seg))[mid], b[mid], "nothing was repaired over the corruption");
  });
});

Deno.test("wal: corruption in a sealed segment is an error even when it looks torn", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META, { segmentBytes: 4096 });
    for (let i = 1; i <= 100; i += 5) await w.save({ term: 1, vote: 1n, commit: i }, ents(i, i + 4, 1, 100));
    await w.close();
    const first = join(dir, "0000000000000000-0000000000000000.wal");
    await Deno.truncate(first, (await Deno.stat(first)).size - 20);
    const r = await WAL.open(dir, { index: 0, term: 0 }, { segmentBytes: 4096 });
    await rejects(r.readAll(), /not the last/);
    await r.close();
  });
});

Deno.test("wal: the crc chain links segments: a swapped-in segment is detected", async () => {
  await withTempDir(async (root) => {
    const a = join(root, "a");
    const b = join(root, "b");
    for (const [dir, term] of [[a, 1], [b, 2]] as const) {
      const w = await WAL.create(dir, META, { segmentBytes: 4096 });
      for (let i = 1; i <= 60; i += 5) await w.save({ term, vote: 1n, commit: i }, ents(i, i + 4, term, 100));
      await w.close();
    }
    const second = (await walFiles(a)).filter((n) => n.endsWith(".wal"))[1];
    assertEquals((await walFiles(b)).includes(second), true);
    await Deno.copyFile(join(b, second), join(a, second));
    const r = await WAL.open(a, { index: 0, term: 0 }, { segmentBytes: 4096 });
    await rejects(r.readAll(), /wal: crc mismatch/);
    await r.close();
  });
});

Deno.test("wal: one fdatasync per save() batch, none when raft does not need one (mustSync)", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    let syncs = 0;
    const w = await WAL.create(dir, META, { onFsync: () => syncs++ });
    syncs = 0;
    await w.save({ term: 1, vote: 1n, commit: 0 }, ents(1, 500));
    assertEquals(syncs, 1, "a batch of 500 entries is one group commit");
    const seg = join(dir, "0000000000000000-0000000000000000.wal");
    const before = await contentEnd(seg);
    await w.save({ term: 0, vote: 0n, commit: 0 }, []);
    assertEquals(await contentEnd(seg), before, "an empty save writes nothing");
    await w.save({ term: 1, vote: 1n, commit: 3 }, []);
    assertEquals(syncs, 1, "a commit-only hard state needs no sync");
    ok(await contentEnd(seg) > before, "but it is still written");
    await w.save({ term: 2, vote: 0n, commit: 3 }, []);
    assertEquals(syncs, 2, "a term change must be durable");
    await w.save({ term: 2, vote: 2n, commit: 3 }, []);
    assertEquals(syncs, 3, "so must a vote");
    await w.close();
    const r = await WAL.open(dir, { index: 0, term: 0 });
    const got = await r.readAll();
    assertEquals(got.hardState, { term: 2, vote: 2n, commit: 3 });
    assertEquals(got.entries.length, 500);
    await r.close();
  });
});

Deno.test("wal: save() rejects a batch whose entries are not contiguous", async () => {
  await withTempDir(async (root) => {
    const w = await WAL.create(join(root, "wal"), META);
    await rejects(w.save({ term: 1, vote: 1n, commit: 0 }, [...ents(1, 3), ...ents(5, 6)]), /not contiguous/);
    await w.close();
  });
});

Deno.test("wal: entries saved before their snapshot marker replay from that snapshot (follower catch-up)", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    await w.save({ term: 1, vote: 1n, commit: 5 }, ents(1, 5, 1));
    // One Ready carried a leader's snapshot at 500 plus entries after it: etcd saves the
    // entries first, then the marker.
    await w.save({ term: 2, vote: 0n, commit: 502 }, ents(501, 503, 2));
    await w.saveSnapshot({ index: 500, term: 2 });
    await w.close();
    const r = await WAL.open(dir, { index: 500, term: 2 });
    assertEquals((await r.readAll()).entries, ents(501, 503, 2));
    await r.close();
  });
});

Deno.test("wal: a torn tail in the newest of several segments is repaired; the chain still verifies", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const opts = { segmentBytes: 4096, logger: captureLogger().logger };
    const w = await WAL.create(dir, META, opts);
    for (let i = 1; i <= 102; i += 3) await w.save({ term: 1, vote: 1n, commit: i }, ents(i, i + 2, 1, 300));
    await w.save({ term: 1, vote: 1n, commit: 102 }, ents(103, 104, 1, 8));
    await w.close();
    const names = (await walFiles(dir)).filter((n) => n.endsWith(".wal"));
    ok(names.length >= 3);
    const last = join(dir, names[names.length - 1]);
    // Cuts the hard state record and the tail of entry 104's record.
    await Deno.truncate(last, (await contentEnd(last)) - 40);

    const { lines, logger } = captureLogger();
    const r = await WAL.open(dir, { index: 0, term: 0 }, { ...opts, logger });
    const got = await r.readAll();
    assertEquals(got.entries, [...ents(1, 102, 1, 300), ...ents(103, 103, 1, 8)]);
    ok(lines.some((l) => l.msg === "wal: repaired torn tail" && l.fields?.segment === names[names.length - 1]));
    await r.save({ term: 1, vote: 1n, commit: 104 }, ents(104, 124, 1, 300));
    await r.close();
    const r2 = await WAL.open(dir, { index: 0, term: 0 }, opts);
    assertEquals((await r2.readAll()).entries, [
      ...ents(1, 102, 1, 300),
      ...ents(103, 103, 1, 8),
      ...ents(104, 124, 1, 300),
    ]);
    await r2.close();
  });
});

/** Copies every file of `from` into `to` (a fresh directory). */
async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) await Deno.copyFile(join(from, e.name), join(to, e.name));
}

/** Every .wal file's bytes, by name. */
async function walBytes(dir: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const n of await walFiles(dir)) if (n.endsWith(".wal")) out[n] = await Deno.readFile(join(dir, n));
  return out;
}

/** Damage done to a built WAL before it is read (after its scan for `afterScan`). */
type Damage = (dir: string, names: string[]) => Promise<void>;
const last = (dir: string, names: string[]) => join(dir, names[names.length - 1]);
const scanCases: [string, Damage | undefined, Damage | undefined][] = [
  ["clean", undefined, undefined],
  [
    "a tail cut mid-record",
    async (d, n) => await Deno.truncate(last(d, n), (await contentEnd(last(d, n))) - 40),
    undefined,
  ],
  ["a zeroed sector in the last batch", async (d, n) => {
    const b = await Deno.readFile(last(d, n));
    const sector = Math.floor(((await contentEnd(last(d, n))) - 700) / 512) * 512;
    await Deno.writeFile(last(d, n), b.fill(0, sector, sector + 512));
  }, undefined],
  ["data after the first zero frame", async (d, n) => {
    const f = await Deno.open(last(d, n), { write: true });
    await f.seek((await contentEnd(last(d, n))) + 5000, Deno.SeekMode.Start);
    await f.write(Uint8Array.of(1, 2, 3));
    f.close();
  }, undefined],
  ["the last segment cut after the scan", undefined, async (d, n) => {
    await Deno.truncate(last(d, n), (await contentEnd(last(d, n))) - 40);
  }],
];

for (const [what, before, afterScan] of scanCases) {
  Deno.test(`wal: replaying a scan's records equals reading the segments again: ${what}`, async () => {
    await withTempDir(async (root) => {
      const built = join(root, "built");
      const opts = { segmentBytes: 16 * 1024 };
      const w = await WAL.create(built, META, opts);
      for (let i = 1; i <= 150; i += 5) await w.save({ term: 1, vote: 1n, commit: i + 4 }, ents(i, i + 4, 1, 300));
      await w.saveSnapshot({ index: 100, term: 1 });
      await w.save({ term: 2, vote: 2n, commit: 152 }, ents(151, 160, 2, 300));
      await w.close();
      const names = (await walFiles(built)).filter((n) => n.endsWith(".wal"));
      ok(names.length >= 3, `several segments: ${names}`);
      await before?.(built, names);

      // from the newest snapshot, whose segment the scan keeps on, and from an older one (its file lost), whose
      // earlier segments the scan did not keep
      for (const at of [{ index: 100, term: 1 }, { index: 0, term: 0 }]) {
        const results = [];
        for (const scanned of [false, true]) {
          const dir = join(root, `${scanned ? "scanned" : "read"}-${at.index}`);
          await copyDir(built, dir);
          const scan = scanned ? await WAL.scan(dir) : undefined;
          if (scan !== undefined) {
            assertEquals(scan.snapshots, [{ index: 0, term: 0 }, { index: 100, term: 1 }]);
            // kept: the newest snapshot's segment and those after it, a suffix
            const kept = [...scan.segments.keys()];
            ok(kept.length > 0 && kept.length < names.length, `kept ${kept} of ${names}`);
            assertEquals(kept, names.slice(names.length - kept.length));
          }
          await afterScan?.(dir, names);
          const { lines, logger } = captureLogger();
          const r = await WAL.open(dir, at, { ...opts, logger }, scan);
          const got = await r.readAll();
          // writable on from where the replay ended, the CRC chain continued
          await r.save({ term: 3, vote: 2n, commit: 170 }, ents(got.entries.at(-1)!.index + 1, 170, 3, 300));
          await r.close();
          const again = await WAL.open(dir, at, opts);
          const reread = await again.readAll();
          await again.close();
          results.push({ got, lines, reread, files: await walBytes(dir) });
        }
        assertEquals(results[1], results[0]);
        ok(results[0].got.entries.length >= 50, `${results[0].got.entries.length} entries after the snapshot`);
      }
    });
  });
}
