// V8 flags detcd runs with (deno task start spells the same flag out, as tasks can't import).
// A small young generation keeps the heap from growing under load at no cost in throughput. Measured with
// etcdbench load, 50k keys (RSS after the load; keys/s noisy by ~10% on the 2-CPU bench machine):
//   default semi-space         303 MiB
//   --max-semi-space-size=2    ~250 MiB, ~19.3k keys/s
//   --max-semi-space-size=1    ~232 MiB, ~19.0k keys/s, compare.sh put ratio 1.28 (2 MiB: 1.14 the same hour)
//   --heap-growing-percent=20  ~200 MiB, but ~15.6k keys/s
//   --optimize-for-size        ~190 MiB, but ~12k keys/s
// After a full GC the same server holds ~190 MiB: 63 MiB live heap (raft log entries, key index, values) and
// 31 MiB of byte arrays; the rest is V8's growth headroom, which follows the rate live data grows at.
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=1";
