import { AutoCompactor, type Clock, REVISION_CHECK_INTERVAL } from "../../mvcc/auto_compactor.ts";
import { ErrCompacted } from "../../mvcc/errors.ts";
import { assertEquals } from "./helpers.ts";

const MIN = 60_000;
const flush = () => new Promise((r) => setTimeout(r, 0));

/** A clock whose time only moves in advance(), waking sleepers in order. */
class FakeClock implements Clock {
  t = 0;
  #sleepers: { until: number; resolve: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      this.#sleepers.push({ until: this.t + ms, resolve });
      signal.addEventListener("abort", () => resolve());
    });
  }

  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      this.#sleepers.sort((a, b) => a.until - b.until);
      const next = this.#sleepers[0];
      if (next === undefined || next.until > end) break;
      this.#sleepers.shift();
      this.t = next.until;
      next.resolve();
    }
    this.t = end;
    await flush();
  }
}

Deno.test("auto compaction: periodic compacts at the revision of one period ago", async () => {
  const clock = new FakeClock();
  const calls: number[] = [];
  const c = new AutoCompactor({
    mode: "periodic",
    retention: 60 * MIN,
    rev: () => Math.floor(clock.now() / MIN) + 1,
    compact: (rev) => {
      calls.push(rev);
      return Promise.resolve();
    },
    clock,
  });
  c.start();
  await clock.advance(59 * MIN);
  assertEquals(calls, []);
  await clock.advance(1 * MIN);
  assertEquals(calls, [1]);
  await clock.advance(59 * MIN);
  assertEquals(calls, [1]);
  await clock.advance(1 * MIN);
  assertEquals(calls, [1, 55]);
  c.pause();
  await clock.advance(120 * MIN);
  assertEquals(calls, [1, 55]);
  c.resume();
  await clock.advance(6 * MIN);
  assertEquals(calls.length, 3);
  await c.stop();
});

Deno.test("auto compaction: periodic with a short retention compacts every retention", async () => {
  const clock = new FakeClock();
  const calls: number[] = [];
  let rev = 100;
  const c = new AutoCompactor({
    mode: "periodic",
    retention: 10 * MIN,
    rev: () => rev++,
    compact: (r) => {
      calls.push(r);
      return Promise.reject(ErrCompacted); // already compacted counts as success
    },
    clock,
  });
  c.start();
  await clock.advance(30 * MIN);
  assertEquals(calls.length, 3);
  await c.stop();
});

Deno.test("auto compaction: revision mode keeps N revisions, retries failures, skips repeats", async () => {
  const clock = new FakeClock();
  const calls: number[] = [];
  let current = 5;
  let fail = false;
  const errors: unknown[] = [];
  const c = new AutoCompactor({
    mode: "revision",
    retention: 10,
    rev: () => current,
    compact: (r) => {
      calls.push(r);
      return fail ? Promise.reject(new Error("no leader")) : Promise.resolve();
    },
    onError: (e) => errors.push(e),
    clock,
  });
  c.start();
  await clock.advance(REVISION_CHECK_INTERVAL);
  assertEquals(calls, [], "rev - retention <= 0");
  current = 30;
  await clock.advance(REVISION_CHECK_INTERVAL);
  assertEquals(calls, [20]);
  await clock.advance(REVISION_CHECK_INTERVAL);
  assertEquals(calls, [20], "same revision is not compacted twice");
  current = 50;
  fail = true;
  await clock.advance(REVISION_CHECK_INTERVAL);
  fail = false;
  await clock.advance(REVISION_CHECK_INTERVAL);
  assertEquals(calls, [20, 40, 40]);
  assertEquals(errors.length, 1);
  await c.stop();
});
