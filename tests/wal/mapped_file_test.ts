// A mapped range reads as the file does, after its pages are let go too, and stays readable after the file is replaced
// by a rename (as a defrag or an installed snapshot replaces the backend); bad offsets are refused.
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { join } from "node:path";
import { isMapped, MAP_ALIGN, mapFile, releasePages } from "../../wal/mapped_file.ts";
import { withTempDir } from "./helpers.ts";

Deno.test("mapped file: the bytes of the range, kept after a rename over the file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f");
    const data = new Uint8Array(3 * MAP_ALIGN + 100).map((_, i) => (i * 7) & 0xff);
    await Deno.writeFile(path, data);
    const whole = mapFile(path, 0, data.length)!;
    const tail = mapFile(path, 2 * MAP_ALIGN, MAP_ALIGN + 100)!;
    assertEquals(whole, data);
    assertEquals(tail, data.subarray(2 * MAP_ALIGN));
    // pages let go come back from the page cache when read
    releasePages(whole.subarray(10, 20));
    assertEquals(whole, data);
    assertEquals([isMapped(whole.subarray(5)), isMapped(data)], [true, false]);
    await Deno.writeFile(join(dir, "g"), new Uint8Array(10));
    await Deno.rename(join(dir, "g"), path);
    assertEquals(tail, data.subarray(2 * MAP_ALIGN));
    assertEquals(mapFile(path, 0, 0), undefined);
    assertThrows(() => mapFile(path, 100, 10), /not aligned/);
  });
});
