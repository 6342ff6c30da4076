// etcd 3.4's long-lived peer streams (rafthttp's stream.go): each member dials `GET /raft/stream/<type>/<its ID>` on
// every peer, and the peer writes the raft messages meant for the dialer into that response for as long as it lasts.
// Two types: "msgappv2" carries MsgApp in etcd's compact encoding (entries that continue the previous append need no
// header), "message" every other message, each an 8-byte length and a raftpb.Message. An idle stream carries a link
// heartbeat every ConnReadTimeout/3; a reader that hears nothing for ConnReadTimeout drops the stream and dials again.
// Messages queue per stream (bounded, etcd's streamBufSize) and leave in one socket write per turn.
import { type PeerRequest, type PeerResponse, plainError } from "./http.ts";
import type { Message, NodeId } from "../../raft/types.ts";
import { MessageType } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";
import { decodeEntry, decodeMessage, entrySize, messageSize, writeEntry, writeMessage } from "../../wal/raft_codec.ts";
import { ProtoWriter } from "../../wal/proto_wire.ts";
import { ownBytes } from "../../mvcc/bytes.ts";
import type { Logger } from "../logger.ts";
import { dialStream } from "./stream_dial.ts";

export const STREAM_PREFIX = "/raft/stream";
export type StreamType = "msgappv2" | "message";
/** etcd's streamBufSize: messages waiting per stream; past it they are dropped and the peer reported unreachable. */
export const STREAM_BUF_SIZE = 4096;
/** etcd's ConnReadTimeout: a stream silent this long is dead. */
const CONN_READ_TIMEOUT_MS = 5000;
const HEARTBEAT_MS = CONN_READ_TIMEOUT_MS / 3;
/** Wait before dialing a stream again (etcd's streamReader rate limit). */
const REDIAL_MS = 100;
/** Dials without that wait after a stream ends (see StreamReader). */
const QUICK_REDIALS = 2;
/** The largest message taken off a stream (etcd's readBytesLimit: 512 MiB). */
const READ_LIMIT = 512 * 1024 * 1024;

const MSGAPPV2_HEARTBEAT = 0, MSGAPPV2_ENTRIES = 1, MSGAPPV2_APP = 2;

/** etcd's linkHeartbeatMessage: a MsgHeartbeat from and to no one. */
function isLinkHeartbeat(m: Message): boolean {
  return m.type === MessageType.MsgHeartbeat && m.from === 0n && m.to === 0n;
}

function linkHeartbeat(): Message {
  return newMessage(MessageType.MsgHeartbeat, 0n, 0n);
}

/**
 * One flush's bytes, written in place into a buffer sized beforehand: entries are encoded straight into it, with no
 * buffer of their own and no regrowing (4 appends of 3415 entries took 10-25 ms so, 4-6 afterwards, measured; the
 * leader encodes every entry once per follower).
 */
class Frames {
  readonly w: ProtoWriter;
  readonly #view: DataView;

  constructor(size: number) {
    this.w = new ProtoWriter(size);
    this.#view = new DataView(this.w.buf.buffer);
  }

  u8(v: number): void {
    this.w.buf[this.w.pos++] = v;
  }

  /** Big-endian, as etcd's binary.Write; lengths and indexes stay below 2^53. */
  u64(v: number): void {
    this.#view.setUint32(this.w.pos, Math.floor(v / 2 ** 32));
    this.#view.setUint32(this.w.pos + 4, v >>> 0);
    this.w.pos += 8;
  }
}

/** Encodes one outgoing stream's messages; msgappv2 remembers the last append it wrote, as etcd's encoder. */
export class StreamEncoder {
  #term = 0;
  #index = 0;

  constructor(readonly type: StreamType) {}

  encode(msgs: Message[]): Uint8Array {
    const out = new Frames(this.#size(msgs));
    for (const m of msgs) {
      if (this.type === "message") {
        out.u64(messageSize(m));
        writeMessage(out.w, m);
      } else this.#encodeApp(out, m);
    }
    if (out.w.pos !== out.w.buf.length) throw new Error(`stream: sized ${out.w.buf.length} bytes, wrote ${out.w.pos}`);
    return out.w.buf;
  }

  /** What encode will write, following the same continuation rule without moving the encoder's state. */
  #size(msgs: Message[]): number {
    let n = 0, term = this.#term, index = this.#index;
    for (const m of msgs) {
      if (this.type === "message") n += 8 + messageSize(m);
      else if (isLinkHeartbeat(m)) n += 1;
      else if (index === m.index && term === m.logTerm && m.logTerm === m.term) {
        n += 1 + 8 + 8;
        for (const e of m.entries) n += 8 + entrySize(e);
        index += m.entries.length;
      } else {
        n += 1 + 8 + messageSize(m);
        term = m.term;
        index = m.entries.length > 0 ? m.entries[m.entries.length - 1].index : m.index;
      }
    }
    return n;
  }

  #encodeApp(out: Frames, m: Message): void {
    if (isLinkHeartbeat(m)) return out.u8(MSGAPPV2_HEARTBEAT);
    if (this.#index === m.index && this.#term === m.logTerm && m.logTerm === m.term) {
      // continues the previous append: entries and commit only
      out.u8(MSGAPPV2_ENTRIES);
      out.u64(m.entries.length);
      for (const e of m.entries) {
        out.u64(entrySize(e));
        writeEntry(out.w, e);
        this.#index++;
      }
      out.u64(m.commit);
      return;
    }
    out.u8(MSGAPPV2_APP);
    out.u64(messageSize(m));
    writeMessage(out.w, m);
    this.#term = m.term;
    this.#index = m.entries.length > 0 ? m.entries[m.entries.length - 1].index : m.index;
  }
}

/**
 * Bytes received and not yet decoded, kept as the chunks they came in: a record is copied out once it is all there,
 * never the whole pending buffer per chunk (a 1 MiB append arrives in dozens of reads).
 */
class ChunkQueue {
  #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already taken. */
  #off = 0;
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // a plain view of a socket's node Buffer: a Buffer's views are Buffers, made by a JS constructor, per entry
    this.#chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    this.length += chunk.length;
  }

  peekU8(): number {
    return this.#chunks[0][this.#off];
  }

  /** An 8-byte big-endian length `at` bytes in (undefined when not all there); past READ_LIMIT the stream is broken. */
  peekLength(at: number): number | undefined {
    if (this.length < at + 8) return undefined;
    let i = 0, off = this.#off + at;
    while (off >= this.#chunks[i].length) off -= this.#chunks[i++].length;
    let c = this.#chunks[i], hi = 0, lo = 0;
    for (let k = 0; k < 8; k++, off++) {
      if (off === c.length) c = this.#chunks[++i], off = 0;
      if (k < 4) hi = hi * 256 + c[off];
      else lo = lo * 256 + c[off];
    }
    if (hi > 0 || lo > READ_LIMIT) {
      throw new Error(`stream record of ${(BigInt(hi) << 32n) | BigInt(lo)} bytes exceeds the read limit`);
    }
    return lo;
  }

  /** The next n bytes, consumed: a view of the chunk they lie in, or a copy when they span chunks. */
  take(n: number): Uint8Array {
    if (n > this.length) throw new Error(`take of ${n} bytes past the ${this.length} received`);
    let b: Uint8Array;
    const first = this.#chunks[0], off = this.#off;
    if (n === 0) b = new Uint8Array(0);
    else if (off + n <= first.length) b = first.subarray(off, off + n);
    else {
      b = new Uint8Array(n);
      for (let got = 0, i = 0, at = off; got < n; i++, at = 0) {
        const part = this.#chunks[i].subarray(at, at + n - got);
        b.set(part, got);
        got += part.length;
      }
    }
    this.skip(n);
    return b;
  }

  skip(n: number): void {
    if (n > this.length) throw new Error(`skip of ${n} bytes past the ${this.length} received`);
    this.length -= n;
    while (n > 0) {
      const left = this.#chunks[0].length - this.#off;
      if (n < left) {
        this.#off += n;
        return;
      }
      n -= left;
      this.#chunks.shift();
      this.#off = 0;
    }
  }
}

/** Decodes a stream as its bytes arrive (they split anywhere); throws on bytes that are not the stream's encoding. */
export class StreamDecoder {
  #q = new ChunkQueue();
  #term = 0;
  #index = 0;
  /** A msgappv2 entries record being decoded: its entries so far and how many are still to come. */
  #partial: { m: Message; left: number } | undefined;

  constructor(readonly type: StreamType, private readonly local: NodeId, private readonly remote: NodeId) {}

  /** The messages completed by `chunk`, link heartbeats left out. */
  push(chunk: Uint8Array): Message[] {
    this.#q.push(chunk);
    const out: Message[] = [];
    while (this.type === "message" ? this.#message(out) : this.#app(out));
    return out;
  }

  /** Decodes one message when it is all there; false when it is not. */
  #message(out: Message[]): boolean {
    const len = this.#q.peekLength(0);
    if (len === undefined || this.#q.length < 8 + len) return false;
    this.#q.skip(8);
    const m = decodeMessage(this.#q.take(len));
    if (!isLinkHeartbeat(m)) out.push(ownEntries(m));
    return true;
  }

  /** Decodes as much of one msgappv2 record as is there; false when nothing more can be. */
  #app(out: Message[]): boolean {
    const q = this.#q;
    if (this.#partial !== undefined) return this.#entries(this.#partial, out);
    if (q.length === 0) return false;
    const type = q.peekU8();
    if (type === MSGAPPV2_HEARTBEAT) {
      q.skip(1);
      return true;
    }
    if (type === MSGAPPV2_APP) {
      const len = q.peekLength(1);
      if (len === undefined || q.length < 9 + len) return false;
      q.skip(9);
      const m = decodeMessage(q.take(len));
      this.#term = m.term;
      this.#index = m.entries.length > 0 ? m.entries[m.entries.length - 1].index : m.index;
      out.push(ownEntries(m));
      return true;
    }
    if (type !== MSGAPPV2_ENTRIES) throw new Error(`failed to parse type ${type} in msgappv2 stream`);
    const count = q.peekLength(1);
    if (count === undefined) return false;
    q.skip(9);
    const m: Message = {
      type: MessageType.MsgApp,
      from: this.remote,
      to: this.local,
      term: this.#term,
      logTerm: this.#term,
      index: this.#index,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    };
    this.#partial = { m, left: count };
    return true;
  }

  /** Continues an entries record: its entries as they complete, then its commit index. */
  #entries(p: { m: Message; left: number }, out: Message[]): boolean {
    const q = this.#q;
    for (; p.left > 0; p.left--) {
      const size = q.peekLength(0);
      if (size === undefined || q.length < 8 + size) return false;
      q.skip(8);
      // the entry owns its bytes (see ownEntries)
      p.m.entries.push(decodeEntry(ownBytes(q.take(size))));
    }
    const commit = q.peekLength(0);
    if (commit === undefined) return false;
    q.skip(8);
    p.m.commit = commit;
    this.#index += p.m.entries.length;
    this.#partial = undefined;
    out.push(p.m);
    return true;
  }
}

/**
 * Gives each entry of a decoded message its own bytes: decoded in place, they are views of the whole read buffer,
 * and a key kept by the store from one would keep that buffer (measured: 430 MiB on a leader after 20k forwarded puts).
 * ownBytes copies for real: the socket's chunks are node Buffers, whose slice() is another view.
 */
export function ownEntries(m: Message): Message {
  for (const e of m.entries) e.data = ownBytes(e.data);
  return m;
}

/**
 * One peer's outgoing stream of one type (etcd's streamWriter): the response of the peer's GET, while it lasts.
 * send() queues; what is queued leaves in one write per turn, and waits while the socket drains.
 */
export class StreamWriter {
  #res: PeerResponse | undefined;
  #enc: StreamEncoder;
  #queue: Message[] = [];
  #scheduled = false;
  #draining = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly type: StreamType,
    private readonly onChange: (working: boolean) => void,
    private readonly onWrite: (bytes: number) => void,
  ) {
    this.#enc = new StreamEncoder(type);
  }

  get working(): boolean {
    return this.#res !== undefined;
  }

  /** The peer dialed: its response replaces any earlier one (which ends). */
  attach(res: PeerResponse): void {
    this.close();
    this.#res = res;
    this.#enc = new StreamEncoder(this.type);
    res.on("close", () => {
      if (this.#res === res) this.#detach();
    });
    res.on("drain", () => {
      this.#draining = false;
      this.#flush();
    });
    this.#heartbeat = setInterval(() => {
      if (this.#queue.length === 0 && !this.#draining) this.#write([linkHeartbeat()]);
    }, HEARTBEAT_MS);
    this.onChange(true);
  }

  /** Queues m; false when the stream is down or its queue is full (the caller sends it another way or drops it). */
  send(m: Message): boolean {
    if (this.#res === undefined || this.#queue.length >= STREAM_BUF_SIZE) return false;
    this.#queue.push(m);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return true;
  }

  close(): void {
    const res = this.#res;
    if (res === undefined) return;
    this.#detach();
    res.end();
  }

  #detach(): void {
    this.#res = undefined;
    this.#queue = [];
    this.#draining = false;
    clearInterval(this.#heartbeat);
    this.onChange(false);
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#draining || this.#queue.length === 0) return;
    const msgs = this.#queue;
    this.#queue = [];
    this.#write(msgs);
  }

  #write(msgs: Message[]): void {
    const res = this.#res;
    if (res === undefined) return;
    const bytes = this.#enc.encode(msgs);
    this.onWrite(bytes.length);
    if (!res.write(bytes)) this.#draining = true;
  }
}

export interface StreamReaderOptions {
  type: StreamType;
  /** The wait before dialing again after a dial failed or a stream ended (default REDIAL_MS). */
  redialMs?: number;
  localId: NodeId;
  peerId: NodeId;
  /** The peer's first peer URL, or undefined while it has none. */
  url: () => string | undefined;
  headers: () => Record<string, string>;
  receive: (m: Message) => void;
  /** The peer answered 410: this member was removed. */
  removed: () => void;
  /** Bytes taken off the stream. */
  onRead: (bytes: number) => void;
  /** A stream that was up broke (ended, went silent, or carried bytes that do not decode). */
  onBroken: () => void;
  /** A dial was refused after the peer had streamed here: nothing listens there now (its process is gone). */
  refused: () => void;
  logger: Logger;
}

/** Dials one peer's stream of one type and hands its messages to raft, dialing again whenever it ends. */
export class StreamReader {
  #abort = new AbortController();
  #stopped = false;
  #lastError = "";
  /** Whether the last dial brought a stream (set as it ends), and whether any dial has. */
  #streamed = false;
  #everStreamed = false;
  /** Ends the wait before the next dial, while there is one. */
  #wake: (() => void) | undefined;

  constructor(private readonly opts: StreamReaderOptions) {}

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
    this.#wake?.();
  }

  /** Dials now if waiting to dial again: the peer is known to be up (it has just dialed this member). */
  redialNow(): void {
    this.#wake?.();
  }

  async #run(): Promise<void> {
    // A stream that ends is dialed again at once, QUICK_REDIALS times: a peer that closed it and is there takes it
    // back, one that is gone refuses (the first may still reach a dying process's listener, and be reset). A refusal
    // tells the peer gone only once it has streamed to this member: one never reached may not have started yet, or
    // be misconfigured.
    let quick = 0;
    while (!this.#stopped) {
      try {
        await this.#readOnce();
        this.#lastError = "";
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        // logged once per kind of failure, not once per dial
        if (msg !== this.#lastError && !this.#stopped) {
          this.opts.logger.debug("stream reader failed", {
            "stream-reader-type": this.opts.type,
            "remote-peer-id": this.opts.peerId.toString(16),
            error: msg,
          });
        }
        this.#lastError = msg;
        const refused = (err as { code?: string }).code === "ECONNREFUSED";
        if (refused && this.#everStreamed && !this.#stopped) this.opts.refused();
      }
      if (this.#streamed) quick = QUICK_REDIALS;
      if (quick > 0) quick--;
      else if (!this.#stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.opts.redialMs ?? REDIAL_MS);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  async #readOnce(): Promise<void> {
    const base = this.opts.url();
    if (base === undefined) throw new Error("no peer URL");
    const url = new URL(`${STREAM_PREFIX}/${this.opts.type}/${this.opts.localId.toString(16)}`, base);
    const dec = new StreamDecoder(this.opts.type, this.opts.localId, this.opts.peerId);
    let connected = false;
    try {
      const { status, text } = await dialStream(url, {
        headers: this.opts.headers(),
        idleTimeoutMs: CONN_READ_TIMEOUT_MS,
        signal: this.#abort.signal,
        onData: (chunk) => {
          connected = true;
          this.opts.onRead(chunk.length);
          for (const m of dec.push(chunk)) this.opts.receive(m);
        },
      });
      if (status === 410) {
        this.opts.removed();
        throw new Error("removed member");
      }
      if (status !== 200) throw new Error(`status ${status}: ${text.trim()}`);
    } catch (err) {
      if (connected && !this.#stopped) this.opts.onBroken();
      throw err;
    } finally {
      this.#streamed = connected;
      if (connected) this.#everStreamed = true;
    }
  }
}

/**
 * `GET /raft/stream/<type>/<from>` (etcd's streamHandler), after the cluster checks: the dialer must be a known
 * member (404 "error sender not found") and must have meant this one (X-Raft-To, 412 "to field mismatch"); then the
 * response stays open as the writer of messages to it.
 */
export function streamHandler(opts: {
  localId: NodeId;
  writer: (from: NodeId, type: StreamType) => StreamWriter | undefined;
  logger: Logger;
}): (req: PeerRequest, res: PeerResponse) => void {
  return (req, res) => {
    const m = /^\/raft\/stream\/(msgappv2|message)\/([0-9a-f]{1,16})$/.exec((req.url ?? "").split("?")[0]);
    if (m === null) return plainError(res, 404, "invalid path");
    const type = m[1] as StreamType, from = BigInt(`0x${m[2]}`);
    const writer = opts.writer(from, type);
    if (writer === undefined) {
      opts.logger.warn("failed to find remote peer in cluster", {
        "local-member-id": opts.localId.toString(16),
        "remote-peer-id-stream-handler": from.toString(16),
      });
      return plainError(res, 404, "error sender not found");
    }
    if (req.headers["x-raft-to"] !== opts.localId.toString(16)) {
      return plainError(res, 412, "to field mismatch");
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.flushHeaders();
    writer.attach(res);
  };
}
