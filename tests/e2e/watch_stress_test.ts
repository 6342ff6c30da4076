// Watch under load with slow readers (gRPC, HTTP/2 flow control): watchers that stop reading while puts go on must not hold up the writes or
// grow the member's memory without bound, and every watcher gets every event exactly once and in order — the ones
// that kept reading at once, the slow ones when they read again.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { WatchRequestSchema, WatchResponseSchema } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { encodeFrame } from "../../rpc/grpc_frame.ts";
import { scrapeMetric, startMember, waitUntil, watchersAre } from "./harness.ts";

const PUTS = 2000;
const VALUE = "v".repeat(8 * 1024);
const FAST = 8;
const SLOW = 60;
const enc = new TextEncoder();

/**
 * A watch on prefix over gRPC (HTTP/2, its own connection); a paused reader stops granting flow-control window, so
 * the member's stream backs up as it does for a real client that stops reading.
 */
class RawWatch {
  readonly revisions: number[] = [];
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #waiter: (() => void) | undefined;
  readonly #session: http2.ClientHttp2Session;
  readonly #stream: http2.ClientHttp2Stream;

  constructor(endpoint: string, prefix: string) {
    this.#session = http2.connect(`http://${endpoint}`);
    this.#session.on("error", () => {});
    this.#stream = this.#session.request({
      ":method": "POST",
      ":path": "/etcdserverpb.Watch/Watch",
      "content-type": "application/grpc",
      te: "trailers",
    });
    this.#stream.on("error", () => {});
    const req = toBinary(
      WatchRequestSchema,
      create(WatchRequestSchema, {
        requestUnion: {
          case: "createRequest",
          value: { key: enc.encode(prefix), rangeEnd: enc.encode(prefix + "\xff") },
        },
      }),
    );
    const frame = encodeFrame(req);
    this.#stream.write(frame);
    this.#stream.pause();
    this.#stream.on("data", (chunk: Uint8Array) => this.#receive(chunk));
  }

  get events(): number {
    return this.revisions.length;
  }

  /** Reads until `until` holds, then stops reading again. */
  async read(until: () => boolean): Promise<void> {
    this.#stream.resume();
    while (!until()) await new Promise<void>((resolve) => this.#waiter = resolve);
    this.#stream.pause();
  }

  #receive(chunk: Uint8Array): void {
    // chunks are kept until a whole frame is in: joining on every chunk is quadratic for multi-MB responses
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= 5) {
      if (this.#chunks[0].length < 5) this.#chunks = [Buffer.concat(this.#chunks)];
      const head = this.#chunks[0];
      const len = new DataView(head.buffer, head.byteOffset + 1, 4).getUint32(0);
      if (this.#buffered < 5 + len) break;
      const all = this.#chunks.length === 1 ? head : Buffer.concat(this.#chunks);
      const r = fromBinary(WatchResponseSchema, all.subarray(5, 5 + len));
      for (const e of r.events) this.revisions.push(Number(e.kv!.modRevision));
      this.#chunks = all.length > 5 + len ? [all.subarray(5 + len)] : [];
      this.#buffered -= 5 + len;
    }
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  close(): void {
    this.#stream.close();
    this.#session.destroy();
  }
}

Deno.test({
  name: "watch stress: slow readers never hold up puts, memory stays bounded, every event arrives once, in order",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const m = await startMember();
    const watches: RawWatch[] = [];
    try {
      for (let i = 0; i < FAST + SLOW; i++) watches.push(new RawWatch(m.endpoint, "s/"));
      await watchersAre(m.endpoint, FAST + SLOW);
      const [fast, slow] = [watches.slice(0, FAST), watches.slice(FAST)];
      const rssBefore = await scrapeMetric(m.endpoint, "process_resident_memory_bytes");
      // fast readers read as events come; slow ones read nothing until the writes are done
      const reading = fast.map((w) => w.read(() => w.events === PUTS));
      let next = 0, acked = 0;
      const put = async () => {
        while (next < PUTS) {
          const i = next++;
          const r = await fetch(`http://${m.endpoint}/v3/kv/put`, {
            method: "POST",
            body: JSON.stringify({ key: btoa(`s/${String(i).padStart(5, "0")}`), value: btoa(VALUE) }),
          });
          assertEquals(r.status, 200, await r.text());
          acked++;
        }
      };
      let parked = 0, pending = 0;
      await Promise.all([
        ...Array.from({ length: 8 }, put),
        waitUntil(async () => {
          parked = Math.max(parked, await scrapeMetric(m.endpoint, "etcd_debugging_mvcc_slow_watcher_total"));
          pending = Math.max(pending, await scrapeMetric(m.endpoint, "etcd_debugging_mvcc_pending_events_total"));
          return acked === PUTS;
        }, () => `${acked} of ${PUTS} puts acknowledged`),
      ]);
      assert(parked > 0, "the slow watchers were parked");
      // a one-watcher stream holds at most 1024 + 64 events; unbounded, the slow ones would hold all: 60 x 2000
      assert(pending <= (FAST + SLOW) * (1024 + 64), `${pending} events pending`);
      const rssGrowth = (await scrapeMetric(m.endpoint, "process_resident_memory_bytes")) - rssBefore;
      // responses encoded for clients that do not read copy the values: 60 x 2000 x 8 KiB = 960 MiB if unbounded
      assert(rssGrowth < 300 * 2 ** 20, `RSS grew ${Math.round(rssGrowth / 2 ** 20)} MiB`);
      await Promise.all(reading);
      await Promise.all(slow.map((w) => w.read(() => w.events === PUTS)));
      const want = Array.from({ length: PUTS }, (_, i) => i + 2);
      for (const w of watches) assertEquals(w.revisions, want);
    } finally {
      // clients first: Deno's node:http2 client can abort on a server's GOAWAY (denoland/deno#36788)
      for (const w of watches) w.close();
      await m.stop();
    }
  },
});
