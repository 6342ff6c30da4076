import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { emptyConfState, type Snapshot } from "../../raft/types.ts";
import { SnapError } from "../../wal/errors.ts";
import { listSuffix } from "../../wal/fs_util.ts";
import { Snapshotter } from "../../wal/snapshotter.ts";
import { withTempDir } from "./helpers.ts";

function snap(term: number, index: number): Snapshot {
  return {
    data: new TextEncoder().encode(`state at ${index}`),
    metadata: { term, index, confState: { ...emptyConfState(), voters: [1n, 2n, 3n] } },
  };
}

Deno.test("snapshotter: save then load returns the newest", async () => {
  await withTempDir(async (dir) => {
    const s = new Snapshotter(dir);
    await rejects(s.load(), (e) => e instanceof SnapError && e.message === "snap: no available snapshot");
    await s.save(snap(1, 10));
    await s.save(snap(2, 20));
    await s.save(snap(0, 0)); // empty: not written
    assertEquals(await listSuffix(dir, ""), [
      "0000000000000001-000000000000000a.snap",
      "0000000000000002-0000000000000014.snap",
    ]);
    assertEquals(await s.load(), snap(2, 20));
  });
});

Deno.test("snapshotter: a corrupt newest snapshot is renamed .broken and the next valid one is used", async () => {
  await withTempDir(async (dir) => {
    const s = new Snapshotter(dir, () => {});
    await s.save(snap(1, 10));
    await s.save(snap(2, 20));
    const newest = join(dir, "0000000000000002-0000000000000014.snap");
    const b = await Deno.readFile(newest);
    b[b.length - 3] ^= 0x40;
    await Deno.writeFile(newest, b);
    await Deno.writeFile(join(dir, "0000000000000003-000000000000001e.snap"), new Uint8Array(0)); // empty file

    assertEquals(await s.load(), snap(1, 10));
    assertEquals(await listSuffix(dir, ".broken"), [
      "0000000000000002-0000000000000014.snap.broken",
      "0000000000000003-000000000000001e.snap.broken",
    ]);
  });
});

Deno.test("snapshotter: loadNewestAvailable takes only snapshots the WAL has a marker for", async () => {
  await withTempDir(async (dir) => {
    const s = new Snapshotter(dir);
    await s.save(snap(1, 10));
    await s.save(snap(2, 20));
    await s.save(snap(2, 30)); // saved, but the crash came before its WAL marker
    const got = await s.loadNewestAvailable([{ index: 0, term: 0 }, { index: 10, term: 1 }, { index: 20, term: 2 }]);
    assertEquals(got, snap(2, 20));
    await rejects(s.loadNewestAvailable([{ index: 20, term: 3 }]), /snap: no available snapshot/);
    assertEquals((await listSuffix(dir, ".broken")).length, 0, "valid but unmatched files are left alone");
  });
});

Deno.test("snapshotter: writes atomically (no temp file left) and purge keeps the newest N", async () => {
  await withTempDir(async (dir) => {
    const s = new Snapshotter(dir);
    for (let i = 1; i <= 5; i++) await s.save(snap(1, i * 10));
    assertEquals((await listSuffix(dir, ".tmp")).length, 0);
    const removed = await s.purge(2);
    assertEquals(removed.length, 3);
    const left = await listSuffix(dir, ".snap");
    assertEquals(left, ["0000000000000001-0000000000000028.snap", "0000000000000001-0000000000000032.snap"]);
    ok((await s.load()).metadata.index === 50);
  });
});

Deno.test("snapshotter: a received backend is saved whole under its snapshot's index, released once used", async () => {
  await withTempDir(async (dir) => {
    const s = new Snapshotter(dir);
    async function* chunks(parts: string[]) {
      for (const p of parts) yield new TextEncoder().encode(p);
    }
    assertEquals(await s.saveDbFrom(chunks(["abc", "def"]), 0x1f), 6);
    assertEquals(s.dbFilePath(0x1f), join(dir, "000000000000001f.snap.db"));
    assertEquals(await Deno.readTextFile(s.dbFilePath(0x1f)), "abcdef");
    // a stream that fails midway leaves nothing behind, not even its temporary file
    async function* broken() {
      yield new TextEncoder().encode("part");
      throw new Error("peer went away");
    }
    await rejects(s.saveDbFrom(broken(), 0x20), /peer went away/);
    assertEquals(await listSuffix(dir, ""), ["000000000000001f.snap.db"]);
    await s.saveDbFrom(chunks(["x"]), 0x30);
    // a restart keeps its snapshot's backend, not yet known to be installed
    assertEquals(await s.releaseDbsUpTo(Infinity, 0x1f), ["0000000000000030.snap.db"]);
    await s.saveDbFrom(chunks(["x"]), 0x30);
    assertEquals(await s.releaseDbsUpTo(0x2f), ["000000000000001f.snap.db"]);
    assertEquals(await listSuffix(dir, ""), ["0000000000000030.snap.db"]);
    // snapshot files are not received backends
    await s.save(snap(1, 10));
    assertEquals(await s.releaseDbsUpTo(Infinity), ["0000000000000030.snap.db"]);
    assertEquals(await listSuffix(dir, ""), ["0000000000000001-000000000000000a.snap"]);
  });
});

Deno.test("snapshotter: a received backend is written whole whatever sizes its chunks come in", async () => {
  await withTempDir(async (dir) => {
    const s = new Snapshotter(dir);
    const MiB = 1024 * 1024;
    // small pieces past a 1 MiB batch, one exactly filling one, one larger than a batch, an empty one
    const sizes = [1000, 32 * 1024, MiB - 33 * 1024 - 1000, MiB, 3 * MiB + 5, 0, 7, MiB - 7, 1];
    let fill = 0;
    const parts = sizes.map((n) => new Uint8Array(n).map(() => fill++ & 0xff));
    async function* chunks() {
      for (const p of parts) yield p;
    }
    const total = sizes.reduce((a, n) => a + n, 0);
    assertEquals(await s.saveDbFrom(chunks(), 0x40), total);
    const got = await Deno.readFile(s.dbFilePath(0x40));
    assertEquals(got.length, total);
    let want = 0, same = true;
    for (const byte of got) same &&= byte === (want++ & 0xff);
    assertEquals(same, true);
  });
});
