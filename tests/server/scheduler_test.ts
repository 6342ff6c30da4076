// The FIFO apply scheduler: jobs in order, one at a time, a failure stops it; a long backlog lets the event loop in.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { FifoScheduler } from "../../server/scheduler.ts";

const busy = (ms: number) => {
  for (const end = performance.now() + ms; performance.now() < end;);
};

Deno.test("scheduler: jobs run one at a time in order; after a failure none runs and it is reported once", async () => {
  const errors: unknown[] = [];
  const s = new FifoScheduler(100, (e) => errors.push(e));
  const ran: number[] = [];
  let running = 0;
  for (let i = 0; i < 10; i++) {
    s.schedule(async () => {
      assertEquals(running++, 0);
      await Promise.resolve();
      ran.push(i);
      running--;
      if (i === 6) throw new Error("apply failed");
    });
  }
  await s.idle();
  assertEquals(ran, [0, 1, 2, 3, 4, 5, 6]);
  assertEquals(errors.map(String), ["Error: apply failed"]);
});

Deno.test("scheduler: a backlog of jobs that takes long lets timers (and so sockets) run between its jobs", async () => {
  const s = new FifoScheduler(100, (e) => {
    throw e;
  });
  const ran: number[] = [];
  // 40 jobs of 2 ms each, queued at once as a restart's re-applied entries are: promise continuations all
  for (let i = 0; i < 40; i++) {
    s.schedule(async () => {
      busy(2);
      await Promise.resolve();
      ran.push(i);
    });
  }
  let timerAfter = -1;
  setTimeout(() => timerAfter = ran.length, 0);
  await s.idle();
  assertEquals(ran, [...Array(40).keys()]);
  // the timer came in after some jobs, not after all 80 ms of them
  assert(timerAfter >= 0 && timerAfter < 20, `the timer ran after ${timerAfter} jobs`);
});
