// The watch checks on hand-made watchers: a watcher that resumed cleanly passes; one that lost, repeated, reordered or
// split events, or whose cancel says nothing, fails; a compaction may leave a gap; acknowledged writes are found.
import { deepStrictEqual as assertEquals, equal, match } from "node:assert/strict";
import { checkWatcher, writesMissingFromHistory } from "./watch_checks.ts";
import type { StoreEvent, WatchResponse } from "./watcher.ts";
import type { Operation } from "./history.ts";

const ev = (rev: number, key = "reg/0", value = `v${rev}`): StoreEvent => ({
  type: "PUT",
  key,
  value,
  modRevision: rev,
});
// revision 4 is a transaction that wrote two keys
const reference = [ev(2), ev(3), ev(4, "reg/0"), ev(4, "reg/1"), ev(5), ev(6), ev(7)];
const resp = (...events: StoreEvent[]): WatchResponse => ({ events });
const check = (startRevision: number, ...responses: WatchResponse[]) =>
  checkWatcher({ name: "w", startRevision, responses }, reference);

Deno.test("watch checks: a watcher that saw the store's history from its start revision passes", () => {
  assertEquals(check(1, resp(ev(2), ev(3)), resp(ev(4, "reg/0"), ev(4, "reg/1")), resp(ev(5)), resp(ev(6), ev(7))), []);
  assertEquals(check(5, resp(ev(5)), resp(ev(6))), [], "resumed later, stopped before the end");
});

Deno.test("watch checks: lost, repeated, reordered and split events fail", () => {
  match(
    check(1, resp(ev(2)), resp(ev(4, "reg/0"), ev(4, "reg/1")))[0],
    /has PUT reg\/0=v4@4 where the store's history has PUT reg\/0=v3@3/,
  );
  match(check(1, resp(ev(2), ev(3)), resp(ev(3)))[0], /repeats PUT reg\/0=v3@3/);
  match(check(1, resp(ev(2), ev(3)), resp(ev(2)))[0], /repeats|goes back/);
  match(check(1, resp(ev(2), ev(3), ev(4, "reg/0")), resp(ev(4, "reg/1")))[0], /revision 4 split across responses/);
  match(check(1, resp(ev(2, "reg/0", "other")))[0], /has PUT reg\/0=other@2/);
});

Deno.test("watch checks: a compaction may cancel a watcher, which resumes at the compaction; a bare cancel fails", () => {
  const compacted: WatchResponse = { events: [], canceled: true, compactRevision: 5 };
  assertEquals(check(1, resp(ev(2)), compacted, resp(ev(5), ev(6))), []);
  match(check(1, resp(ev(2)), { events: [], canceled: true })[0], /canceled the watch without a reason/);
});

Deno.test("watch checks: every acknowledged write is in the store's history at its revision", () => {
  const put = (value: string, revision: number): Operation => ({
    id: revision,
    client: 1,
    key: "reg/0",
    input: { op: "write", value },
    call: 0,
    ret: 1,
    output: {},
    revision,
  });
  assertEquals(writesMissingFromHistory([put("v2", 2), put("v7", 7)], reference), []);
  equal(writesMissingFromHistory([put("v2", 3), put("lost", 8)], reference).length, 2);
});
