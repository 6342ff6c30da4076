// The linearizable read loop: one ReadIndex per burst of reads, release at the applied
// index, deadlines and shutdown.
import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { ReadIndexLoop } from "../../server/read_index.ts";
import { IdGenerator } from "../../server/id_generator.ts";

function setup(ids = new IdGenerator(0x8e9e05c52164694dn, Date.now())) {
  const sent: Uint8Array[] = [];
  let applied = 0;
  const loop = new ReadIndexLoop((ctx) => sent.push(ctx), () => applied, () => ids.nextBig());
  return { loop, sent, setApplied: (n: number) => (applied = n) };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** A read asked twice: the second request has a context of its own, the first's late answer releases nothing. */
async function onlySecondAnswerReleases(loop: ReadIndexLoop, sent: Uint8Array[], done: () => boolean) {
  assertEquals(sent[0].join() === sent[1].join(), false);
  loop.onReadStates([{ index: 3, requestCtx: sent[0] }]);
  await tick();
  assertEquals(done(), false, "the first request's late answer");
  loop.onReadStates([{ index: 9, requestCtx: sent[1] }]);
  await tick();
  assertEquals(done(), true);
}

Deno.test("reads in one turn share one ReadIndex and wait for the applied index", async () => {
  const { loop, sent, setApplied } = setup();
  const done: number[] = [];
  const reads = [1, 2, 3].map((i) => loop.wait(Infinity).then(() => done.push(i)));
  await tick();
  assertEquals(sent.length, 1);
  loop.onReadStates([{ index: 10, requestCtx: sent[0] }]);
  await tick();
  assertEquals(done, [], "released before the applied index reached the read index");
  setApplied(10);
  loop.onApplied();
  await Promise.all(reads);
  assertEquals(done, [1, 2, 3]);
});

Deno.test("one ReadIndex in flight: reads meanwhile share the next; a foreign ReadState releases nothing", async () => {
  const { loop, sent, setApplied } = setup();
  setApplied(5);
  let first = false;
  let second = false;
  let third = false;
  void loop.wait(Infinity).then(() => (first = true));
  await tick();
  void loop.wait(Infinity).then(() => (second = true));
  void loop.wait(Infinity).then(() => (third = true));
  await tick();
  assertEquals(sent.length, 1, "the later reads wait for the request in flight");
  loop.onReadStates([{ index: 1, requestCtx: new Uint8Array([1, 2, 3]) }]);
  loop.onReadStates([{ index: 5, requestCtx: sent[0] }]);
  await tick();
  assertEquals([first, second, third], [true, false, false]);
  assertEquals(sent.length, 2, "then they go together");
  loop.onReadStates([{ index: 7, requestCtx: sent[1] }]);
  await tick();
  assertEquals([second, third], [false, false]);
  setApplied(7);
  loop.onApplied();
  await tick();
  assertEquals([second, third], [true, true]);
});

Deno.test("a ReadIndex unanswered for 500 ms is asked again under a new context; the old answer is ignored", async () => {
  const ids = new IdGenerator(0x8e9e05c52164694dn, Date.now());
  const sent: Uint8Array[] = [];
  let now = 0;
  const loop = new ReadIndexLoop((ctx) => sent.push(ctx), () => 9, () => ids.nextBig(), () => now);
  let done = false;
  void loop.wait(Infinity).then(() => (done = true));
  await tick();
  now = 400;
  loop.expire(now, new Error("timeout"));
  assertEquals(sent.length, 1);
  now = 500;
  loop.expire(now, new Error("timeout"));
  assertEquals(sent.length, 2);
  await onlySecondAnswerReleases(loop, sent, () => done);
});

Deno.test("a new leader is asked at once for the ReadIndex in flight, under a new context", async () => {
  const { loop, sent, setApplied } = setup();
  setApplied(9);
  let done = false;
  void loop.wait(Infinity).then(() => (done = true));
  await tick();
  assertEquals(sent.length, 1);
  loop.leaderElected();
  assertEquals(sent.length, 2, "asked again without waiting for the retry");
  await onlySecondAnswerReleases(loop, sent, () => done);
  loop.leaderElected();
  assertEquals(sent.length, 2, "nothing in flight: nothing asked");
});

Deno.test("unanswered reads fail at their deadline; failAll rejects everything pending", async () => {
  const { loop } = setup();
  const late = loop.wait(100);
  await tick();
  loop.expire(50, new Error("timeout"));
  loop.expire(100, new Error("timeout"));
  await rejects(late, /timeout/);
  const a = loop.wait(Infinity);
  const b = loop.wait(Infinity);
  loop.failAll(new Error("stopped"));
  await rejects(a, /stopped/);
  await rejects(b, /stopped/);
});

Deno.test("two members' first reads carry different contexts (the leader keeps pending reads by context)", async () => {
  const t = Date.now();
  const a = setup(new IdGenerator(0x8e9e05c52164694dn, t));
  const b = setup(new IdGenerator(0x5cae315174de75b1n, t));
  void a.loop.wait(Infinity);
  void b.loop.wait(Infinity);
  await tick();
  assertEquals(a.sent.length + b.sent.length, 2);
  assertEquals(a.sent[0].join() === b.sent[0].join(), false);
});
