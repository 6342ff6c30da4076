// Differential watch tests: the same etcdctl watches and writes against Debian's etcd 3.4 and against detcd print
// the same thing. Watches are known to be established when the server's etcd_debugging_mvcc_watcher_total says
// so; a watch's output is complete when the session's last value (END) has appeared in it.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type BackgroundCtl, ctl, etcdctl, spawnEtcdctl, waitUntil, watchersAre } from "./harness.ts";
import { mask, normalize, opts, withBoth } from "./reference.ts";

/** Watches running against both servers, the same arguments each. */
class WatchPair {
  readonly ref: BackgroundCtl;
  readonly mine: BackgroundCtl;
  constructor(readonly refEp: string, readonly mineEp: string, readonly args: string[], input = false) {
    this.ref = spawnEtcdctl(refEp, args, { input });
    this.mine = spawnEtcdctl(mineEp, args, { input });
  }

  /** Waits for `done` in both outputs, then compares them. */
  async compareWhen(done: (stdout: string) => boolean): Promise<void> {
    for (const [c, ep] of [[this.ref, this.refEp], [this.mine, this.mineEp]] as const) {
      await waitUntil(() => done(c.stdout()), () => `etcdctl ${this.args.join(" ")} on ${ep}: ${c.stdout()}`);
    }
    assertEquals(
      normalize(this.mine.stdout(), this.mineEp),
      normalize(this.ref.stdout(), this.refEp),
      `etcdctl ${this.args.join(" ")}`,
    );
  }

  async stop(): Promise<void> {
    await Promise.all([this.ref.stop(), this.mine.stop()]);
  }
}

const ended = (s: string) => s.includes("END") || s.includes("RU5E" /* base64 of END */);

/** The same command on both, the same answer. */
async function both(ref: string, mine: string, args: readonly string[], input?: string): Promise<void> {
  const [a, b] = [await etcdctl(ref, [...args], input), await etcdctl(mine, [...args], input)];
  assertEquals(normalize(b.stdout, mine), normalize(a.stdout, ref), `etcdctl ${args.join(" ")}`);
}

/** Ends with END on foo, which every watch of these tests covers. */
const writes: [string[], string?][] = [
  [["put", "foo", "1"]],
  [["put", "fo2", "x"]],
  [["put", "fop", "y"]],
  [["put", "foo", "2"]],
  [["put", "bar", "b"]],
  [["del", "fo", "--prefix"]],
  [["txn", "-i"], "\nput foo 3\nput fo1 z\nput bar c\n\n"], // several events in one revision
  [["put", "foo", "END"]],
];

Deno.test({
  name: "differential watch: live watches on keys, prefixes and ranges, prev-kv, json, exec",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const watches = [
        ["watch", "foo"],
        ["watch", "--prefix", "fo"],
        ["watch", "foo", "fop"],
        ["watch", "foo", "--prev-kv"],
        ["watch", "--prefix", "fo", "-w", "json"],
        ["watch", "--prefix", ""],
        [
          "watch",
          "foo",
          "--",
          "sh",
          "-c",
          'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"',
        ],
      ].map((args) => new WatchPair(ref, mine, args));
      try {
        await watchersAre(ref, watches.length);
        await watchersAre(mine, watches.length);
        for (const [args, input] of writes) await both(ref, mine, args, input);
        // the exec watch prints each event, then runs the command for it: done once the command ran for END
        for (const w of watches) await w.compareWhen(w.args.includes("sh") ? (s) => s.includes('"END"') : ended);
      } finally {
        await Promise.all(watches.map((w) => w.stop()));
      }
    }),
});

Deno.test({
  name: "differential watch: history from a revision, then live; a compacted start revision",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      for (const [args, input] of writes) await both(ref, mine, args, input);
      const history = [
        ["watch", "--rev", "1", "foo"],
        ["watch", "--rev", "1", "--prefix", "", "--prev-kv"],
        ["watch", "--rev", "4", "--prefix", "fo", "-w", "json"],
        ["watch", "--rev", "6", "bar", "fop"],
      ].map((args) => new WatchPair(ref, mine, args));
      try {
        for (const w of history) await w.compareWhen(ended);
        // then live: every history watch covers foo
        await both(ref, mine, ["put", "foo", "AFTER"]);
        for (const w of history) await w.compareWhen((s) => s.includes("AFTER") || s.includes("QUZURVI="));
      } finally {
        await Promise.all(history.map((w) => w.stop()));
      }
      await both(ref, mine, ["compaction", "6"]);
      // at the compacted revision: still served; below it: canceled with etcd's message, etcdctl exits
      const atCompacted = new WatchPair(ref, mine, ["watch", "--rev", "6", "foo"]);
      try {
        await atCompacted.compareWhen(ended);
      } finally {
        await atCompacted.stop();
      }
      const below = new WatchPair(ref, mine, ["watch", "--rev", "5", "foo"]);
      const [a, b] = [await below.ref.exited, await below.mine.exited];
      assertEquals(
        { code: b, stdout: below.mine.stdout(), stderr: below.mine.stderr() },
        { code: a, stdout: below.ref.stdout(), stderr: below.ref.stderr() },
      );
    }),
});

Deno.test({
  name: "differential watch: watch -i with several watches and progress; an empty range",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const w = new WatchPair(ref, mine, ["watch", "-i"], true);
      try {
        const count = (s: string, part: string) => s.split(part).length - 1;
        const step = async (line: string, watchers: number, seen: (s: string) => boolean) => {
          await w.ref.writeLine(line);
          await w.mine.writeLine(line);
          await watchersAre(ref, watchers);
          await watchersAre(mine, watchers);
          await w.compareWhen(seen);
        };
        // one thing at a time, each seen before the next, so the watches' goroutines print in a fixed order
        await step("watch foo", 1, () => true);
        await both(ref, mine, ["put", "foo", "1"]);
        await w.compareWhen((s) => s.includes("foo\n1\n"));
        await step("watch --prefix b", 2, () => true);
        await both(ref, mine, ["put", "bar", "2"]);
        await w.compareWhen((s) => s.includes("bar\n2\n"));
        await step("watch --rev 1 foo", 3, (s) => count(s, "foo\n1\n") === 2);
        await both(ref, mine, ["put", "bar", "3"]);
        await w.compareWhen((s) => s.includes("bar\n3\n"));
        await w.ref.writeLine("progress");
        await w.mine.writeLine("progress");
        await w.compareWhen((s) => (s.match(/progress notify/g) ?? []).length === 3);
      } finally {
        await w.stop();
      }
      // a range that holds no key: etcd cancels the watch, etcdctl reports it and exits
      const empty = new WatchPair(ref, mine, ["watch", "b", "a"]);
      const [a, b] = [await empty.ref.exited, await empty.mine.exited];
      assertEquals(
        { code: b, stdout: empty.mine.stdout(), stderr: empty.mine.stderr() },
        { code: a, stdout: empty.ref.stdout(), stderr: empty.ref.stderr() },
      );
      assertEquals(await ctl(mine, "get", "foo", "--print-value-only"), "1\n");
    }),
});

/** A gateway watch stream: its newline-delimited results as they arrive. */
function gatewayWatch(endpoint: string, path: string, body: string) {
  const abort = new AbortController();
  let text = "";
  const done = fetch(`http://${endpoint}${path}`, { method: "POST", body, signal: abort.signal }).then(async (r) => {
    const dec = new TextDecoder();
    for await (const chunk of r.body!) text += dec.decode(chunk, { stream: true });
  }).catch(() => {});
  return {
    lines: () => text.split("\n").filter((l) => l !== ""),
    close: async () => {
      abort.abort();
      await done;
    },
  };
}

const enc = (s: string) => btoa(s);

/**
 * Results by watch ID, each watcher's in order: etcd sends the results of different watchers for one revision in
 * Go's map order, which is random.
 */
function byWatcher(lines: string[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const l of lines) {
    const r = mask(JSON.parse(l)) as { result: { watch_id?: string } };
    (out[r.result.watch_id ?? "0"] ??= []).push(r);
  }
  return out;
}

Deno.test({
  name: "differential watch: the gateway's /v3/watch stream, many requests in one body (etcd's wire answers)",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const body = [
        { create_request: { key: enc("foo"), watch_id: "5" } },
        { create_request: { key: enc("foo"), watch_id: "5" } }, // duplicate ID
        { create_request: { key: enc("b"), range_end: enc("a") } }, // empty range
        { cancel_request: { watch_id: "99" } }, // unknown: no answer
        { create_request: { key: enc("foo"), prev_kv: true, filters: ["NODELETE"] } },
        { create_request: { key: "", range_end: enc("\0") } }, // every key
        { create_request: { key: enc("fo"), range_end: enc("fp"), fragment: true } },
        { cancel_request: { watch_id: "5" } },
        { progress_request: {} },
      ].map((r) => JSON.stringify(r)).join("\n");
      const streams = [gatewayWatch(ref, "/v3/watch", body), gatewayWatch(mine, "/v3/watch", body)];
      const beta = [gatewayWatch(ref, "/v3beta/watch", body), gatewayWatch(mine, "/v3beta/watch", body)];
      try {
        await watchersAre(ref, 6);
        await watchersAre(mine, 6);
        for (
          const [args, input] of [
            [["put", "foo", "1"]],
            [["put", "foo", "2"]],
            // under the fragment limit: the watcher that asked for fragments gets the revision whole
            [["txn", "-i"], `\n${Array.from({ length: 60 }, (_, i) => `put fo${10 + i} v\n`).join("")}\n`],
            [["del", "foo"]],
            [["put", "foo", "END"]],
          ] as [string[], string?][]
        ) await both(ref, mine, args, input);
        for (const [a, b] of [streams, beta]) {
          for (const s of [a, b]) {
            await waitUntil(() => s.lines().filter((l) => l.includes("RU5E")).length === 3, () => s.lines().join("\n"));
          }
          assertEquals(byWatcher(b.lines()), byWatcher(a.lines()));
        }
      } finally {
        await Promise.all([...streams, ...beta].map((s) => s.close()));
      }
      // a client that goes away frees its watchers at once
      await watchersAre(mine, 0);
    }, ["--max-request-bytes=1024"]),
});

Deno.test({
  name: "differential watch: history larger than the response limit comes in fragments to a watcher that asked",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      // etcd's limit is --max-request-bytes + 512 KiB: 600 puts of 950 bytes replay as one ~600 KB response
      const value = btoa("v".repeat(950));
      for (const ep of [ref, mine]) {
        for (let i = 0; i < 600; i++) {
          const r = await fetch(`http://${ep}/v3/kv/put`, {
            method: "POST",
            body: JSON.stringify({ key: enc(`f${100 + i}`), value }),
          });
          assertEquals(r.status, 200, await r.text());
        }
      }
      const create = (fragment: boolean) =>
        JSON.stringify({ create_request: { key: enc("f"), range_end: enc("g"), start_revision: "4", fragment } });
      const streams = [true, false].flatMap((
        f,
      ) => [gatewayWatch(ref, "/v3/watch", create(f)), gatewayWatch(mine, "/v3/watch", create(f))]);
      try {
        // the last put is revision 603 (the probes took 2 and 3)
        const complete = (lines: string[]) => lines.some((l) => l.includes('"mod_revision":"603"'));
        for (const s of streams) await waitUntil(() => complete(s.lines()), () => `${s.lines().length} lines`);
        const [fragRef, fragMine, wholeRef, wholeMine] = streams.map((s) => s.lines().map((l) => mask(JSON.parse(l))));
        assertEquals(fragMine, fragRef);
        assertEquals(wholeMine, wholeRef);
        const fragments = fragRef.filter((r) => (r as { result: { fragment?: boolean } }).result.fragment).length;
        assertEquals([fragRef.length, fragments, wholeRef.length], [3, 1, 2]); // created + two parts; created + one
      } finally {
        await Promise.all(streams.map((s) => s.close()));
      }
    }, ["--max-request-bytes=1024"]),
});

Deno.test({
  name: "differential watch: an idle watcher that asked for progress gets the revision each interval",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const body = JSON.stringify({ create_request: { key: enc("idle"), progress_notify: true } });
      const streams = [gatewayWatch(ref, "/v3/watch", body), gatewayWatch(mine, "/v3/watch", body)];
      try {
        for (const s of streams) await waitUntil(() => s.lines().length >= 2, () => s.lines().join("\n"));
        const [a, b] = streams.map((s) => s.lines().slice(0, 2).map((l) => mask(JSON.parse(l))));
        assertEquals(b, a);
        assertEquals((a[1] as { result: object }).result, {
          header: (a[0] as { result: { header: object } }).result.header,
        });
      } finally {
        await Promise.all(streams.map((s) => s.close()));
      }
    }, ["--experimental-watch-progress-notify-interval=300ms"]),
});

Deno.test({
  name: "differential watch: history of two-key transactions from revision 1 (a catch-up larger than a stream's room)",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      // 600 two-key Txns through the gateway (etcdctl per Txn would take minutes), then the same watch on both
      for (const ep of [ref, mine]) {
        for (let i = 0; i < 600; i++) {
          const put = (k: string) => ({ request_put: { key: btoa(k), value: btoa(`${i}`) } });
          const res = await fetch(`http://${ep}/v3/kv/txn`, {
            method: "POST",
            body: JSON.stringify({ success: [put("tx/a"), put("tx/b")] }),
          });
          await res.body?.cancel();
        }
      }
      await both(ref, mine, ["put", "tx/end", "END"]);
      const w = new WatchPair(ref, mine, ["watch", "--rev", "1", "--prefix", "tx/"]);
      try {
        await w.compareWhen(ended);
      } finally {
        await w.stop();
      }
    }),
});
