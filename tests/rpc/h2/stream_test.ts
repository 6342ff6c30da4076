// H2Stream's queue of response data: chunks whose memory the writer reuses are kept as copies (keepCopy), in a
// ring of the stream's own once it needs more than one, and go out whole and in order however the flow-control
// window slices them.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { H2Stream, type StreamSink } from "../../../rpc/h2/stream.ts";

/** xorshift32: the same seed gives the same inputs. */
function rng(seed: number): (n: number) => number {
  let x = seed || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return Math.floor(((x >>> 0) / 2 ** 32) * n);
  };
}

/** A connection with no window: it sends nothing until the test does (as H2Connection.sendData does). */
const blocked: StreamSink = { sendHeaders() {}, sendData() {}, reset() {}, consumed() {} };

/** Sends up to n queued bytes the way H2Connection.sendData takes them from the queue. */
function send(s: H2Stream, n: number, out: number[]): void {
  while (n > 0 && s.queue.length > 0) {
    const chunk = s.queue[0];
    const take = Math.min(n, chunk.length - s.queueOffset);
    for (let i = 0; i < take; i++) out.push(chunk[s.queueOffset + i]);
    n -= take;
    s.queued -= take;
    if (s.queueOffset + take === chunk.length) s.dropFirst();
    else s.queueOffset += take;
  }
}

Deno.test("h2 stream: copies of reused chunks go out whole and in order, through the ring and past it", () => {
  for (const seed of [1, 7, 42, 2024]) {
    const int = rng(seed);
    const s = new H2Stream(1, {} as never, blocked, 0, 0);
    const scratch = new Uint8Array(200_000);
    const want: number[] = [], got: number[] = [];
    let inRing = 0, separate = 0;
    for (let m = 0; m < 400; m++) {
      // mostly small messages, some larger than the ring holds beside others, some plain (not reused)
      const len = 1 + (int(10) === 0 ? int(150_000) : int(5000));
      const reused = int(4) !== 0;
      const data = reused ? scratch.subarray(0, len) : new Uint8Array(len);
      for (let i = 0; i < len; i++) data[i] = int(256);
      for (const byte of data) want.push(byte);
      s.write(data);
      if (reused) {
        s.keepCopy(data);
        const held = s.queue[s.queue.length - 1];
        if (held.buffer === scratch.buffer) throw new Error("a reused chunk is still queued");
        if (held.byteLength < held.buffer.byteLength) inRing++;
        else separate++;
        scratch.fill(0xee); // the writer moves on
      }
      // the peer's window opens a little, at random
      if (int(3) === 0) send(s, int(80_000), got);
    }
    send(s, Infinity, got);
    assertEquals(got.length, want.length);
    assertEquals(got, want);
    if (inRing === 0 || separate === 0) throw new Error(`seed ${seed}: ring ${inRing}, separate copies ${separate}`);
  }
});

Deno.test("h2 stream: a drained stream gives its ring back, and the next stream that needs one takes it", () => {
  /** Two copies queued on a fresh stream (the second goes into a ring); the ring's buffer. */
  const ringOf = (s: H2Stream): ArrayBufferLike => {
    const scratch = new Uint8Array(100);
    for (let k = 0; k < 2; k++) {
      s.write(scratch.subarray(0, 10 + k));
      s.keepCopy(scratch.subarray(0, 10 + k));
    }
    return s.queue[1].buffer;
  };
  const a = new H2Stream(1, {} as never, blocked, 0, 0);
  const ring = ringOf(a);
  const b = new H2Stream(3, {} as never, blocked, 0, 0);
  // a still holds its copies: b gets a ring of its own
  const other = ringOf(b);
  assertEquals(other === ring, false);
  send(a, Infinity, []);
  assertEquals(ringOf(new H2Stream(5, {} as never, blocked, 0, 0)), ring);
  // a closed stream's ring is free too
  b.close(true, 0);
  assertEquals(ringOf(new H2Stream(7, {} as never, blocked, 0, 0)), other);
});
