import { type Event, Event_EventType } from "../../rpc/gen/mvccpb/kv_pb.ts";
import { ErrEmptyWatcherRange, ErrWatcherDuplicateID, ErrWatcherNotExist } from "../../mvcc/errors.ts";
import type { KVStore } from "../../mvcc/kvstore.ts";
import { WatchableStore } from "../../mvcc/watchable_store.ts";
import type { Watcher, WatchResult, WatchSink } from "../../mvcc/watcher_group.ts";
import { AUTO_WATCH_ID, WatchStream } from "../../mvcc/watch_stream.ts";
import { assert, assertEquals, assertThrows, b, openStore, s, tempDir } from "./helpers.ts";

/** A stream's sink with room for `capacity` results; take() empties it, as a client reading does. */
class TestSink implements WatchSink {
  queue: WatchResult[] = [];
  stream!: WatchStream;
  constructor(public capacity = Infinity) {}
  send(watcher: Watcher, events: Event[], revision: number, compactRevision: number): boolean {
    if (this.queue.length >= this.capacity) return false;
    this.queue.push({ watcher, events, revision, compactRevision });
    return true;
  }
  take(): WatchResult[] {
    const out = this.queue;
    this.queue = [];
    this.stream.drained();
    return out;
  }
}

function open(ws: WatchableStore, capacity = Infinity): { sink: TestSink; stream: WatchStream } {
  const sink = new TestSink(capacity);
  const stream = new WatchStream(ws, sink);
  sink.stream = stream;
  return { sink, stream };
}

/** The events a watcher got, as "PUT key=value@rev" / "DELETE key@rev" lines. */
function lines(results: WatchResult[], id?: bigint): string[] {
  return results.filter((r) => id === undefined || r.watcher.id === id).flatMap((r) =>
    r.events.map((e) =>
      e.type === Event_EventType.PUT
        ? `PUT ${s(e.kv!.key)}=${s(e.kv!.value)}@${e.kv!.modRevision}`
        : `DELETE ${s(e.kv!.key)}@${e.kv!.modRevision}`
    )
  );
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function withStore(fn: (store: KVStore, ws: WatchableStore) => void | Promise<void>): Promise<void> {
  const { store, close } = await openStore(await tempDir());
  const ws = new WatchableStore(store);
  try {
    await fn(store, ws);
  } finally {
    ws.close();
    await close();
  }
}

Deno.test("watchable store: live events by key, range, prefix and from-key; filters; one response per revision", () =>
  withStore((store, ws) => {
    const { sink, stream } = open(ws);
    const key = stream.watch(AUTO_WATCH_ID, b("foo"), undefined, 0);
    const range = stream.watch(AUTO_WATCH_ID, b("fo"), b("fop"), 0);
    const fromKey = stream.watch(AUTO_WATCH_ID, b("g"), new Uint8Array(0), 0);
    const noPut = stream.watch(AUTO_WATCH_ID, b("foo"), undefined, 0, { noPut: true });
    assertEquals([key, range, fromKey, noPut], [0n, 1n, 2n, 3n]);
    store.put(b("foo"), b("1"));
    store.put(b("fop"), b("x")); // outside [fo, fop)
    store.put(b("zz"), b("z"));
    const t = store.write();
    t.put(b("foo"), b("2"));
    t.put(b("fo1"), b("y"));
    t.deleteRange(b("foo"));
    t.end();
    const got = sink.take();
    assertEquals(lines(got, key), ["PUT foo=1@2", "PUT foo=2@5", "DELETE foo@5"]);
    assertEquals(lines(got, range), ["PUT foo=1@2", "PUT foo=2@5", "PUT fo1=y@5", "DELETE foo@5"]);
    assertEquals(lines(got, fromKey), ["PUT zz=z@4"]);
    assertEquals(lines(got, noPut), ["DELETE foo@5"]);
    // one result per watcher per revision, its header revision the write's
    assertEquals(got.filter((r) => r.watcher.id === range).map((r) => r.revision), [2, 5]);
    stream.cancel(range);
    store.put(b("foo"), b("3"));
    assertEquals(lines(sink.take(), range), []);
    assertEquals(ws.counts, { streams: 1, synced: 3, unsynced: 0, victims: 0, parkedStreams: 0 });
    stream.close();
    assertEquals(ws.counts, { streams: 0, synced: 0, unsynced: 0, victims: 0, parkedStreams: 0 });
  }));

Deno.test("watch stream: IDs as etcd assigns them; bad ranges, duplicate IDs and unknown cancels refused", () =>
  withStore((_store, ws) => {
    const { stream } = open(ws);
    assertEquals(stream.watch(7n, b("a"), undefined, 0), 7n);
    assertEquals(stream.watch(AUTO_WATCH_ID, b("a"), undefined, 0), 0n);
    assertEquals(stream.watch(1n, b("a"), undefined, 0), 1n);
    assertEquals(stream.watch(AUTO_WATCH_ID, b("a"), undefined, 0), 2n); // the lowest free one
    assertThrows(() => stream.watch(7n, b("a"), undefined, 0), (e) => e === ErrWatcherDuplicateID);
    assertThrows(() => stream.watch(AUTO_WATCH_ID, b("b"), b("a"), 0), (e) => e === ErrEmptyWatcherRange);
    assertThrows(() => stream.watch(AUTO_WATCH_ID, b("b"), b("b"), 0), (e) => e === ErrEmptyWatcherRange);
    assertThrows(() => stream.cancel(99n), (e) => e === ErrWatcherNotExist);
    stream.cancel(7n);
    assertThrows(() => stream.cancel(7n), (e) => e === ErrWatcherNotExist);
    assertEquals(stream.watch(7n, b("a"), undefined, 0), 7n);
  }));

Deno.test("watchable store: history replays from the start revision in batches, then goes live without a gap", () =>
  withStore(async (store, ws) => {
    for (let i = 0; i < 2500; i++) store.put(b(i % 2 === 0 ? "k" : "other"), b(`${i}`));
    const { sink, stream } = open(ws);
    const id = stream.watch(AUTO_WATCH_ID, b("k"), undefined, 2);
    const all = stream.watch(AUTO_WATCH_ID, b("\0"), new Uint8Array(0), 2);
    const got: WatchResult[] = [];
    // writes go on while the watchers catch up
    let i = 2500;
    await until(() => {
      store.put(b(i % 2 === 0 ? "k" : "other"), b(`${i}`));
      i++;
      got.push(...sink.take());
      return ws.counts.synced === 2;
    }, "the watchers to catch up");
    for (let j = 0; j < 10; j++, i++) store.put(b(i % 2 === 0 ? "k" : "other"), b(`${i}`));
    got.push(...sink.take());
    const want = Array.from({ length: i }, (_, n) => n).filter((n) => n % 2 === 0).map((n) => `PUT k=${n}@${n + 2}`);
    assertEquals(lines(got, id), want);
    assertEquals(lines(got, all).length, i);
    // never more than the batch limit of revisions in one result, never back in time
    let last = 0;
    for (const r of got.filter((r) => r.watcher.id === all)) {
      const revs = new Set(r.events.map((e) => Number(e.kv!.modRevision)));
      assert(revs.size <= 1000, `${revs.size} revisions in one result`);
      assert(Math.min(...revs) > last && r.revision >= Math.max(...revs));
      last = Math.max(...revs);
    }
  }));

Deno.test("watchable store: a full stream parks its watchers, writes go on, nothing is lost or repeated", () =>
  withStore(async (store, ws) => {
    const slow = open(ws, 3);
    const fast = open(ws);
    const slowId = slow.stream.watch(AUTO_WATCH_ID, b("k"), b("l"), 0);
    const fastId = fast.stream.watch(AUTO_WATCH_ID, b("k"), b("l"), 0);
    for (let i = 0; i < 50; i++) store.put(b(`k${i % 5}`), b(`${i}`));
    assertEquals(ws.counts.victims, 1);
    assertEquals(lines(fast.sink.take(), fastId).length, 50);
    const got: WatchResult[] = [];
    await until(() => {
      got.push(...slow.sink.take());
      return ws.counts.synced === 2 && slow.sink.queue.length === 0;
    }, "the slow watcher to catch up");
    const want = Array.from({ length: 50 }, (_, i) => `PUT k${i % 5}=${i}@${i + 2}`);
    assertEquals(lines(got, slowId), want);
  }));

Deno.test("watchable store: a stream closed with parked watchers leaves nothing of it behind", () =>
  withStore((store, ws) => {
    const slow = open(ws, 2);
    for (let i = 0; i < 3; i++) slow.stream.watch(AUTO_WATCH_ID, b("k"), b("l"), 0);
    for (let i = 0; i < 5; i++) store.put(b(`k${i}`), b("v"));
    assertEquals([ws.counts.victims, ws.counts.parkedStreams], [3, 1]);
    slow.stream.close();
    assertEquals(ws.counts, { streams: 0, synced: 0, unsynced: 0, victims: 0, parkedStreams: 0 });
  }));

Deno.test("watchable store: a start revision below the compaction cancels the watcher; live ones go on", () =>
  withStore(async (store, ws) => {
    const { sink, stream } = open(ws);
    const live = stream.watch(AUTO_WATCH_ID, b("a"), undefined, 0);
    for (let i = 0; i < 5; i++) store.put(b("a"), b(`${i}`));
    await store.compact(4);
    const old = stream.watch(AUTO_WATCH_ID, b("a"), undefined, 3);
    const atCompaction = stream.watch(AUTO_WATCH_ID, b("a"), undefined, 4);
    store.put(b("a"), b("5"));
    const got: WatchResult[] = [];
    await until(() => {
      got.push(...sink.take());
      return got.some((r) => r.watcher.id === old) && lines(got, atCompaction).length === 4;
    }, "the compacted answer");
    assertEquals(got.filter((r) => r.watcher.id === old).map((r) => r.compactRevision), [4]);
    assertEquals(lines(got, atCompaction), ["PUT a=2@4", "PUT a=3@5", "PUT a=4@6", "PUT a=5@7"]);
    assertEquals(lines(got, live).length, 6);
  }));

Deno.test("watchable store: history survives a restart (rebuilt from the backend)", async () => {
  const dir = await tempDir();
  let o = await openStore(dir);
  for (let i = 0; i < 10; i++) o.store.put(b("k"), b(`${i}`));
  o.store.deleteRange(b("k"));
  await o.store.commit();
  await o.close();
  o = await openStore(dir);
  const ws = new WatchableStore(o.store);
  try {
    const { sink, stream } = open(ws);
    const id = stream.watch(AUTO_WATCH_ID, b("k"), undefined, 9);
    const got: WatchResult[] = [];
    await until(() => {
      got.push(...sink.take());
      return ws.counts.synced === 1;
    }, "the watcher to catch up");
    assertEquals(lines(got, id), ["PUT k=7@9", "PUT k=8@10", "PUT k=9@11", "DELETE k@12"]);
  } finally {
    ws.close();
    await o.close();
  }
});

Deno.test("watchable store: watchers behind on one range from one revision catch up as one (shared events)", () =>
  withStore(async (store, ws) => {
    for (let i = 0; i < 30; i++) store.put(b(`p/${i % 3}`), b(`${i}`));
    const { sink, stream } = open(ws);
    const same = Array.from({ length: 20 }, () => stream.watch(AUTO_WATCH_ID, b("p/"), b("p0"), 10));
    const other = stream.watch(AUTO_WATCH_ID, b("p/"), b("p0"), 20);
    const got: WatchResult[] = [];
    await until(() => {
      got.push(...sink.take());
      return ws.counts.synced === 21;
    }, "the watchers to catch up");
    const want = Array.from({ length: 22 }, (_, n) => n + 8).map((n) => `PUT p/${n % 3}=${n}@${n + 2}`);
    for (const id of same) assertEquals(lines(got, id), want);
    assertEquals(lines(got, other), want.slice(10));
    const first = got.filter((r) => same.includes(r.watcher.id));
    assert(first.every((r) => r.events === first[0].events), "one events array for the cohort");
  }));

Deno.test("watchable store: a crowd behind catches up in smaller batches (lone watchers get etcd's 1000)", () =>
  withStore(async (store, ws) => {
    for (let i = 0; i < 1500; i++) store.put(b("c"), b(`${i}`));
    const { sink, stream } = open(ws);
    const lone = stream.watch(AUTO_WATCH_ID, b("c"), undefined, 2);
    let got: WatchResult[] = [];
    await until(() => {
      got.push(...sink.take());
      return ws.counts.synced === 1;
    }, "the lone watcher to catch up");
    assertEquals(got.map((r) => r.events.length), [1000, 500]);
    stream.cancel(lone);
    const crowd = Array.from({ length: 70 }, () => stream.watch(AUTO_WATCH_ID, b("c"), undefined, 2));
    got = [];
    await until(() => {
      got.push(...sink.take());
      return ws.counts.synced === 70;
    }, "the crowd to catch up");
    for (const id of crowd) {
      const mine = got.filter((r) => r.watcher.id === id);
      assert(mine.every((r) => r.events.length <= 100), "batches of at most 100 revisions");
      assertEquals(lines(mine).length, 1500);
    }
  }));

Deno.test("watchable store: history with multi-key revisions replays whole across batch boundaries", () =>
  withStore(async (store, ws) => {
    let events = 0;
    for (let i = 0; i < 3000; i++) {
      if (i % 7 === 0) {
        const t = store.write();
        t.put(b("reg/1"), b(`b${i}`));
        t.put(b("reg/2"), b(`b${i}`));
        t.end();
        events += 2;
      } else {
        store.put(b("reg/0"), b(`a${i}`));
        events++;
      }
    }
    const { sink, stream } = open(ws);
    const all = stream.watch(AUTO_WATCH_ID, b("\0"), new Uint8Array(0), 1);
    const got: WatchResult[] = [];
    await until(() => {
      got.push(...sink.take());
      return ws.counts.synced === 1;
    }, "the watcher to catch up");
    assertEquals(lines(got, all).length, events);
  }));
