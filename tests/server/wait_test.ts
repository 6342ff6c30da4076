// The proposals' wait: settled once, by its entry, a failure or its deadline.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Wait } from "../../server/wait.ts";

Deno.test("wait: expire rejects every waiter past its deadline, whatever order they registered in", async () => {
  const failed: boolean[] = [];
  const w = new Wait<string>((f) => failed.push(f));
  // a request that waited for a leader registers after a later one that did not, with the earlier deadline
  const outcomes = [w.register(1, 300, undefined), w.register(2, 100, undefined), w.register(3, 200, undefined)]
    .map((p) => p.then((v) => `ok ${v}`, (e) => `failed ${e}`));
  w.expire(250, "timeout");
  w.trigger(1, "applied");
  assertEquals(await Promise.all(outcomes), ["ok applied", "failed timeout", "failed timeout"]);
  assertEquals([w.size, failed], [0, [true, true, false]]);
  assertEquals(w.ids(), []);
});
