// Replay reads a segment's records, not its preallocated tail; anything unusual reads the whole file so the decoder
// judges it as before. Reading the snapshot markers does not check the tail's zeros.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { WAL } from "../../wal/wal.ts";
import { readSegment } from "../../wal/segment_reader.ts";
import { ents, withTempDir } from "./helpers.ts";
import { isZeroFrame } from "../../wal/walpb.ts";

Deno.test("a zero frame is eight zero bytes: one set bit in any of them (a length, a pad mark) is a frame", () => {
  const buf = new Uint8Array(24);
  assertEquals(isZeroFrame(buf, 8), true);
  for (let i = 8; i < 16; i++) {
    for (const bit of [0x01, 0x80]) {
      buf[i] = bit;
      assertEquals(isZeroFrame(buf, 8), false, `byte ${i - 8} = ${bit}`);
      buf[i] = 0;
    }
  }
  buf[7] = buf[16] = 0xff; // its neighbours are not its own
  assertEquals(isZeroFrame(buf, 8), true);
});

const SEGMENT = "0000000000000000-0000000000000000.wal";

async function segmentOf(dir: string, checkZeros = true) {
  const f = await Deno.open(join(dir, SEGMENT), { read: true });
  try {
    return await readSegment(join(dir, SEGMENT), f, checkZeros);
  } finally {
    f.close();
  }
}

Deno.test("segment reader: the records only, their trailing zeros kept; a dirty tail reads the whole file", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, new Uint8Array([1]));
    // entries whose data end in zeros: a record may end in zero bytes, and must not be cut there
    const es = ents(1, 20, 1, 64);
    await w.save({ term: 1, vote: 0n, commit: 20 }, es);
    await w.close();
    const { data, size } = await segmentOf(dir);
    assertEquals(size, 64 * 1024 * 1024);
    assertEquals(data.length < 4096, true, `${data.length} bytes`);
    const r = await WAL.open(dir, { index: 0, term: 0 });
    assertEquals((await r.readAll()).entries, es);
    await r.close();

    // a stray byte just past the records, in the block they end in (the file's blocks no more than before): found
    assertEquals(data.length + 100 < 4096, true);
    const dirty = await Deno.open(join(dir, SEGMENT), { write: true });
    await dirty.seek(data.length + 100, Deno.SeekMode.Start);
    await dirty.write(new Uint8Array([7]));
    dirty.close();
    assertEquals((await segmentOf(dir)).data.length, size);
    const clean = await Deno.open(join(dir, SEGMENT), { write: true });
    await clean.seek(data.length + 100, Deno.SeekMode.Start);
    await clean.write(new Uint8Array([0]));
    clean.close();
    assertEquals((await segmentOf(dir)).data, data, "zeroed again: the records");

    // a stray byte far into the preallocated space: the whole file, for the decoder to judge
    const f = await Deno.open(join(dir, SEGMENT), { write: true });
    await f.seek(size - 1, Deno.SeekMode.Start);
    await f.write(new Uint8Array([7]));
    f.close();
    assertEquals((await segmentOf(dir)).data.length, size);
    // unless the zeros are not to be checked: the records up to the first zero frame, as before
    assertEquals((await segmentOf(dir, false)).data, data);
    // the snapshot markers are read so (the decoder stops at the zero frame either way)
    assertEquals(await WAL.validSnapshotEntries(dir), [{ index: 0, term: 0 }]);
  });
});
