// WAL group-commit benchmark: save() throughput with fdatasync for batch sizes 1, 16 and
// 256, i.e. how many raft Readys (batches) and entries per second one disk sustains.
//
//   deno run -A scripts/wal_bench.ts [dir] [seconds-per-size] [entry-bytes]
//
// `dir` defaults to a temp dir on the default temp filesystem; point it at the disk the
// data dir will live on, since fdatasync cost is a property of that device.

import { join } from "node:path";
import type { Entry } from "../raft/types.ts";
import { WAL } from "../wal/wal.ts";

const root = Deno.args[0] || await Deno.makeTempDir({ prefix: "detcd-wal-bench-" });
const seconds = Number(Deno.args[1] ?? 3);
const entryBytes = Number(Deno.args[2] ?? 256);
const sizes = [1, 16, 256];

console.log(`dir ${root}, ${seconds}s per batch size, ${entryBytes}-byte entries, fdatasync on`);
console.log("batch  batches/s  entries/s      MB/s  p50 ms  p99 ms");
for (const batch of sizes) {
  const dir = join(root, `wal-${batch}`);
  const w = await WAL.create(dir, new Uint8Array([1]), { logger: () => {} });
  const payload = new Uint8Array(entryBytes).fill(0xab);
  const lat: number[] = [];
  let index = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const ents: Entry[] = [];
    for (let i = 0; i < batch; i++) ents.push({ term: 1, index: ++index, type: 0, data: payload });
    const s = performance.now();
    await w.save({ term: 1, vote: 1n, commit: index - batch }, ents);
    lat.push(performance.now() - s);
  }
  const secs = (performance.now() - t0) / 1000;
  await w.close();
  await Deno.remove(dir, { recursive: true });
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))].toFixed(2);
  console.log(
    [
      String(batch).padStart(5),
      (lat.length / secs).toFixed(0).padStart(10),
      (index / secs).toFixed(0).padStart(10),
      ((index * entryBytes) / secs / 1e6).toFixed(1).padStart(9),
      pct(0.5).padStart(7),
      pct(0.99).padStart(7),
    ].join(" "),
  );
}
if (!Deno.args[0]) await Deno.remove(root, { recursive: true });
