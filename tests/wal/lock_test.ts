import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { WalError } from "../../wal/errors.ts";
import { WAL } from "../../wal/wal.ts";
import { withTempDir } from "./helpers.ts";

const META = new Uint8Array([1]);
const walUrl = new URL("../../wal/wal.ts", import.meta.url).href;

/** Runs a second Deno process that tries to open the WAL in `dir`; returns its exit code and stderr. */
async function openFromChild(dir: string): Promise<{ code: number; stderr: string }> {
  const script = `
    import { WAL } from ${JSON.stringify(walUrl)};
    try {
      const w = await WAL.open(${JSON.stringify(dir)}, { index: 0, term: 0 });
      await w.readAll();
      await w.close();
      console.error("opened");
      Deno.exit(0);
    } catch (e) {
      console.error(String(e));
      Deno.exit(3);
    }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("lock: a second process cannot open a WAL this one holds, and fails at once", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    await w.save({ term: 1, vote: 1n, commit: 0 }, [{ term: 1, index: 1, type: 0, data: new Uint8Array(1) }]);
    const t0 = performance.now();
    const held = await openFromChild(dir);
    assertEquals(held.code, 3, held.stderr);
    ok(held.stderr.includes(`another process holds the lock on ${dir}`), held.stderr);
    ok(performance.now() - t0 < 10_000, "the child failed instead of waiting for the lock");

    await w.close();
    const free = await openFromChild(dir);
    assertEquals(free.code, 0, free.stderr);
  });
});

Deno.test("lock: within one process a second open of a held WAL fails too", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "wal");
    const w = await WAL.create(dir, META);
    await rejects(
      WAL.open(dir, { index: 0, term: 0 }),
      (e) => e instanceof WalError && /holds the lock/.test(e.message),
    );
    await w.close();
    const again = await WAL.open(dir, { index: 0, term: 0 });
    await again.readAll();
    await again.close();
  });
});
