import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { join } from "node:path";
import { listSuffix } from "../../wal/fs_util.ts";
import { purge } from "../../wal/purge.ts";
import { WAL } from "../../wal/wal.ts";
import { ents, withTempDir } from "./helpers.ts";

const quiet = { logger: () => {} };

Deno.test("purge: keeps the newest N files with the suffix and ignores others", async () => {
  await withTempDir(async (dir) => {
    for (let i = 1; i <= 6; i++) {
      await Deno.writeFile(join(dir, `${String(i).padStart(16, "0")}-x.snap`), new Uint8Array(1));
    }
    await Deno.writeFile(join(dir, "db"), new Uint8Array(1));
    const removed = await purge(dir, ".snap", 2);
    assertEquals(removed.length, 4);
    assertEquals(await listSuffix(dir, ".snap"), ["0000000000000005-x.snap", "0000000000000006-x.snap"]);
    assertEquals(await listSuffix(dir, "db"), ["db"]);
    assertEquals(await purge(dir, ".snap", 0), [], "max 0 means unlimited");
  });
});

Deno.test("purge: never removes a WAL segment the live WAL still locks; releaseLockTo frees old ones", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const opts = { segmentBytes: 4096, ...quiet };
    const w = await WAL.create(dir, new Uint8Array([1]), opts);
    for (let i = 1; i <= 200; i += 5) await w.save({ term: 1, vote: 1n, commit: i + 4 }, ents(i, i + 4, 1, 100));
    const all = await listSuffix(dir, ".wal");
    ok(all.length >= 6, `segments: ${all}`);

    assertEquals(await purge(dir, ".wal", 1), [], "every segment is still locked");
    // After a snapshot at 150, segments that end before it may go; the one holding 150 stays.
    await w.releaseLockTo(150);
    const removed = await purge(dir, ".wal", 1);
    ok(removed.length > 0, "released segments are purged");
    const left = await listSuffix(dir, ".wal");
    assertEquals(left.length + removed.length, all.length);
    // The WAL can still replay from the snapshot after the purge.
    await w.saveSnapshot({ index: 150, term: 1 });
    await w.close();
    const r = await WAL.open(dir, { index: 150, term: 1 }, opts);
    assertEquals((await r.readAll()).entries, ents(151, 200, 1, 100));
    await r.close();
  });
});
