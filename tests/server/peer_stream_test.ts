// etcd's stream encodings (rafthttp msg_codec.go, msgappv2_codec.go): what a stream's bytes are, and that they
// decode back to the same messages however the socket splits them.
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { type Message, MessageType } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";
import { app, ent } from "./raft_messages.ts";
import {
  StreamDecoder,
  StreamEncoder,
  StreamReader,
  type StreamReaderOptions,
  type StreamType,
} from "../../server/peer/stream.ts";
import { memoryLogger, nopLogger } from "../../server/logger.ts";
import { encodeEntry, encodeMessage } from "../../wal/raft_codec.ts";

const linkHeartbeat = newMessage(MessageType.MsgHeartbeat, 0n, 0n);
const u64 = (n: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return [...b];
};

/** Decodes `bytes` fed in pieces of `step` bytes. */
function decodeSplit(dec: StreamDecoder, bytes: Uint8Array, step: number): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(...dec.push(bytes.slice(i, i + step)));
  return out;
}

Deno.test("peer stream: message stream is an 8-byte length and the message; link heartbeats are skipped", () => {
  const vote = { ...newMessage(MessageType.MsgVote, 2n, 1n), term: 5, index: 9, logTerm: 4 };
  const resp = { ...newMessage(MessageType.MsgAppResp, 1n, 2n), term: 5, index: 12, reject: true, rejectHint: 11 };
  const bytes = new StreamEncoder("message").encode([vote, linkHeartbeat, resp]);
  const v = encodeMessage(vote);
  assertEquals([...bytes.subarray(0, 8 + v.length)], [...u64(v.length), ...v]);
  for (const step of [1, 3, 1000]) {
    assertEquals(decodeSplit(new StreamDecoder("message", 2n, 1n), bytes, step), [vote, resp]);
  }
});

Deno.test("peer stream: msgappv2 writes a continuing append as its entries and commit, a new one whole", () => {
  const first = app(3, 10, 3, [ent(3, 11), ent(3, 12)], 10);
  const next = app(3, 12, 3, [ent(3, 13)], 12);
  const probe = app(3, 20, 2, [], 13); // does not continue: whole again
  const enc = new StreamEncoder("msgappv2");
  const a = enc.encode([first]);
  const b = enc.encode([next, linkHeartbeat]);
  const c = enc.encode([probe]);
  const m1 = encodeMessage(first), e13 = encodeEntry(ent(3, 13));
  assertEquals([...a], [2, ...u64(m1.length), ...m1]);
  assertEquals([...b], [1, ...u64(1), ...u64(e13.length), ...e13, ...u64(12), 0]);
  assertEquals(c[0], 2);
  const all = new Uint8Array([...a, ...b, ...c]);
  // one flush of them all: the same bytes (its size is worked out ahead, following the same continuations)
  assertEquals([...new StreamEncoder("msgappv2").encode([first, next, linkHeartbeat, probe])], [...all]);
  for (const step of [1, 5, 4096]) {
    // the decoder fills what the short form leaves out from the stream's ends and its previous append
    assertEquals(decodeSplit(new StreamDecoder("msgappv2", 2n, 1n), all, step), [first, next, probe]);
  }
});

Deno.test("peer stream: bytes that are not the stream's encoding fail the stream", () => {
  throws(() => new StreamDecoder("msgappv2", 2n, 1n).push(Uint8Array.of(9)), /failed to parse type 9 in msgappv2/);
  throws(() => new StreamDecoder("message", 2n, 1n).push(Uint8Array.of(255, 0, 0, 0, 0, 0, 0, 0)), /read limit/);
  throws(() => new StreamDecoder("message", 2n, 1n).push(Uint8Array.of(0, 0, 0, 0, 32, 0, 0, 1)), /536870913 bytes/);
  // 512 MiB itself is allowed: the decoder waits for the rest
  assertEquals(new StreamDecoder("message", 2n, 1n).push(Uint8Array.of(0, 0, 0, 0, 32, 0, 0, 0)), []);
  // a record of no bytes is a message with every field at its default
  assertEquals(new StreamDecoder("message", 2n, 1n).push(new Uint8Array(8)).length, 1);
});

Deno.test("peer stream: decoded entries own their bytes, not the read buffer they came in", () => {
  // a kept entry pins its own bytes and at most a little beside them (mvcc/bytes.ts ownBytes)
  const pinsLittle = (m: Message) => m.entries.every((e) => e.data.buffer.byteLength <= e.data.length + 128);
  const data = (i: number) => new Uint8Array(300).fill(i);
  const first = app(3, 10, 3, [{ ...ent(3, 11), data: data(1) }], 10);
  const next = app(3, 11, 3, [{ ...ent(3, 12), data: data(2) }, { ...ent(3, 13), data: data(3) }], 11);
  const prop = { ...newMessage(MessageType.MsgProp, 2n, 1n), entries: [{ ...ent(0, 0), data: data(4) }, ent(0, 1)] };
  const streams: [StreamType, Message[]][] = [["msgappv2", [first, next]], ["message", [prop, prop]]];
  for (const [type, msgs] of streams) {
    const bytes = new StreamEncoder(type).encode(msgs);
    const all = msgs.map(() => true);
    // one socket read of 64 KiB holding the whole stream, as a node Buffer (whose slice() is a view)
    const chunk = Buffer.alloc(64 * 1024);
    chunk.set(bytes);
    const got = new StreamDecoder(type, 2n, 1n).push(chunk.subarray(0, bytes.length));
    assertEquals(got, msgs);
    assertEquals(got.map(pinsLittle), all);
    // the same bytes read as one plain array, and in pieces
    for (const step of [bytes.length, 7]) {
      assertEquals(decodeSplit(new StreamDecoder(type, 2n, 1n), new Uint8Array(bytes), step).map(pinsLittle), all);
    }
  }
});

/**
 * A message-stream reader of peer 2 at `port` that waits 600 s before dialing again after a failure (so only dials at
 * once come within a test's limit), its callbacks no-ops unless given.
 */
function testReader(port: number, opts: Partial<StreamReaderOptions> = {}): StreamReader {
  return new StreamReader({
    type: "message",
    redialMs: 600_000,
    localId: 1n,
    peerId: 2n,
    url: () => `http://127.0.0.1:${port}`,
    headers: () => ({}),
    receive: () => {},
    removed: () => {},
    onRead: () => {},
    onBroken: () => {},
    refused: () => {},
    logger: nopLogger(),
    ...opts,
  });
}

Deno.test("peer stream: a reader waiting to dial again dials at once when told the peer is up", async () => {
  const dials: string[] = [];
  let dialed: () => void = () => {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    dials.push(new URL(req.url).pathname);
    dialed();
    return new Response("etcd server is starting\n", { status: 503 });
  });
  const next = () => new Promise<void>((resolve) => dialed = resolve);
  // without redialNow() the second dial would come after the test's limit
  const reader = testReader(server.addr.port);
  try {
    const first = next();
    reader.start();
    await first;
    const second = next();
    // the reader waits once it has read the first answer, a moment after the server sent it: wake it until it dials
    const waking = setInterval(() => reader.redialNow(), 10);
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => reject(new Error("no second dial within 10 s")), 10_000);
    });
    try {
      await Promise.race([second, limit]);
    } finally {
      clearInterval(waking);
      clearTimeout(deadline);
    }
    assertEquals(dials, ["/raft/stream/message/1", "/raft/stream/message/1"]);
  } finally {
    reader.stop();
    await server.shutdown();
  }
});

Deno.test("peer stream: a stream that breaks is dialed again at once, and a refused dial tells the peer is gone", async () => {
  // a peer that answers one stream with a link heartbeat, then dies: the stream's socket closes first, and the dial
  // at once still reaches its listener, which resets it as it closes; then nothing listens
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    if (sockets.push(socket) > 1) {
      server.close();
      socket.resetAndDestroy();
      return;
    }
    const beat = new StreamEncoder("message").encode([linkHeartbeat]);
    socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${beat.length.toString(16)}\r\n`);
    socket.write(beat);
    socket.write("\r\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  let up!: () => void, gone!: () => void;
  const streaming = new Promise<void>((resolve) => up = resolve);
  const refused = new Promise<void>((resolve) => gone = resolve);
  let broken = 0;
  // only the dials at once after a broken stream can come within the test's limit
  const reader = testReader(port, { onRead: () => up(), onBroken: () => broken++, refused: () => gone() });
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    deadline = setTimeout(() => reject(new Error("no refused dial within 10 s")), 10_000);
  });
  try {
    reader.start();
    await Promise.race([streaming, limit]);
    sockets[0].destroy();
    await Promise.race([refused, limit]);
    assertEquals([broken, sockets.length], [1, 2]);
  } finally {
    clearTimeout(deadline);
    reader.stop();
    server.close();
  }
});

Deno.test("peer stream: a peer never reached that refuses dials is not told gone (it may not have started yet)", async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const logger = memoryLogger();
  let gone = 0;
  const reader = testReader(port, { refused: () => gone++, logger });
  try {
    reader.start();
    // the failed dial is logged in the same step that would have told it
    for (let i = 0; i < 1000 && !logger.lines.some((l) => l.includes("ECONNREFUSED")); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals([logger.lines.some((l) => l.includes("ECONNREFUSED")), gone], [true, 0]);
  } finally {
    reader.stop();
  }
});
