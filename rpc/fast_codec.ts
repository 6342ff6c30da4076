// Hand-written encoders for the hottest responses (Put, Range, Watch), writing the gRPC frame in one exactly-sized
// buffer, and a decoder for WatchRequest (a watch create made three times its size in garbage through the reflection
// decoder, which thousands of watchers turned into RSS). They give protobuf-es's bytes — fields in number order,
// proto3 defaults left out — and step aside (undefined) for what they don't cover, such as revisions or terms beyond
// 2^53, unknown fields or KeyValues that are not full messages, which then take the generic encoder. Member and
// cluster IDs use all 64 bits. KeyValues are written by mvcc's codec, the one that also writes them to the backend. A
// header field left out of an init object counts as its default.
import { Buffer } from "node:buffer";
import type { Event, KeyValue } from "./gen/mvccpb/kv_pb.ts";
import { encodedKeyValueSize, writeKeyValue } from "../mvcc/kv_codec.ts";
import { EMPTY_BYTES } from "../mvcc/bytes.ts";
import type {
  PutResponse,
  RangeResponse,
  ResponseHeader,
  SnapshotResponse,
  WatchCreateRequest,
  WatchRequest,
  WatchResponse,
} from "./gen/etcdserverpb/rpc_pb.ts";
import { decodeOrStepAside, type ProtoReader, WIRE_BYTES, WIRE_VARINT } from "../wal/proto_wire.ts";

const FRAME_HEADER = 5;
const EMPTY = Buffer.alloc(0);
const MAX = Number.MAX_SAFE_INTEGER;

export type FrameEncoder = (msg: unknown) => Buffer | undefined;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** A field's size with a one-byte tag (every field number here is below 16). */
function uintField(v: bigint | undefined): number {
  if (v === undefined || v === 0n) return 0;
  const n = Number(v);
  return n > 0 && n <= MAX ? 1 + varintSize(n) : NaN;
}

function lenField(len: number): number {
  return 1 + varintSize(len) + len;
}

// A header's cluster and member IDs use all 64 bits and change never (or once, at a restart): their encoding is kept.
let idsCluster: bigint | undefined = -1n;
let idsMember: bigint | undefined = -1n;
let idsBytes = new Uint8Array(0);

/** Fields 1 and 2 of a header (cluster_id, member_id), as bytes. */
function idFields(h: ResponseHeader): Uint8Array {
  if (h.clusterId === idsCluster && h.memberId === idsMember) return idsBytes;
  const out: number[] = [];
  for (const [field, v] of [[1, h.clusterId], [2, h.memberId]] as const) {
    if (v === undefined || v === 0n) continue;
    out.push(field << 3);
    for (let u = BigInt.asUintN(64, v);; u >>= 7n) {
      if (u < 0x80n) {
        out.push(Number(u));
        break;
      }
      out.push(Number(u & 0x7fn) | 0x80);
    }
  }
  idsCluster = h.clusterId;
  idsMember = h.memberId;
  idsBytes = Uint8Array.from(out);
  return idsBytes;
}

function headerSize(h: ResponseHeader): number {
  return idFields(h).length + uintField(h.revision) + uintField(h.raftTerm);
}

/** A full KeyValue message's encoded size, or NaN to send the response down the generic path. */
function kvSize(kv: KeyValue): number {
  return kv.$typeName === "mvccpb.KeyValue" && !hasUnknown(kv) ? encodedKeyValueSize(kv) : NaN;
}

function hasUnknown(m: object): boolean {
  const u = (m as { $unknown?: unknown[] }).$unknown;
  return u !== undefined && u.length > 0;
}

class Writer {
  constructor(readonly buf: Buffer, public pos = FRAME_HEADER) {}

  varint(v: number): void {
    const b = this.buf;
    while (v >= 128) {
      b[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    b[this.pos++] = v;
  }

  uint(field: number, v: bigint | undefined): void {
    if (v === undefined || v === 0n) return;
    this.buf[this.pos++] = field << 3;
    this.varint(Number(v));
  }

  len(field: number, len: number): void {
    this.buf[this.pos++] = (field << 3) | 2;
    this.varint(len);
  }

  header(h: ResponseHeader, size: number): void {
    this.len(1, size);
    const ids = idFields(h);
    this.buf.set(ids, this.pos);
    this.pos += ids.length;
    this.uint(3, h.revision);
    this.uint(4, h.raftTerm);
  }

  kv(field: number, kv: KeyValue, size: number): void {
    this.len(field, size);
    this.pos = writeKeyValue(this.buf, this.pos, kv);
  }
}

// Frames are built in one reusable buffer (see reclaimFrame): a watch fan-out would otherwise allocate every
// response's bytes only for the transport to copy them into the connection's output, and that garbage (outside V8's
// heap, collected late) is what grows RSS under load.
const SCRATCH_BYTES = 64 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
let scratchLent = false;

/**
 * Called once the stream has taken `frame`: if it was built in the shared buffer, the stream keeps a copy of what it
 * still holds (H2Stream.keepCopy), and the buffer is free for the next frame.
 */
export function reclaimFrame(frame: Uint8Array, stream: { keepCopy(data: Uint8Array): void }): void {
  if (frame.buffer !== scratch.buffer) return;
  stream.keepCopy(frame);
  scratchLent = false;
}

function frame(size: number): Writer {
  const total = FRAME_HEADER + size;
  let buf: Buffer;
  if (!scratchLent && total <= SCRATCH_BYTES) {
    scratchLent = true;
    buf = scratch.subarray(0, total);
  } else buf = Buffer.allocUnsafe(total);
  buf[0] = 0;
  buf.writeUInt32BE(size, 1);
  return new Writer(buf);
}

function encodePutResponse(msg: unknown): Buffer | undefined {
  const r = msg as PutResponse;
  if (hasUnknown(r)) return undefined;
  const hs = r.header === undefined ? -1 : headerSize(r.header);
  const ps = r.prevKv === undefined ? -1 : kvSize(r.prevKv);
  const size = (hs < 0 ? 0 : lenField(hs)) + (ps < 0 ? 0 : lenField(ps));
  if (Number.isNaN(size)) return undefined;
  const w = frame(size);
  if (r.header !== undefined) w.header(r.header, hs);
  if (r.prevKv !== undefined) w.kv(2, r.prevKv, ps);
  return w.buf;
}

/** A backup's 32 KiB blobs (Maintenance.Snapshot): built in the shared buffer, not in protobuf-es's growing one. */
function encodeSnapshotResponse(msg: unknown): Buffer | undefined {
  const r = msg as SnapshotResponse;
  if (hasUnknown(r) || r.header !== undefined) return undefined;
  const blob = r.blob ?? EMPTY;
  const size = uintField(r.remainingBytes) + (blob.length > 0 ? lenField(blob.length) : 0);
  if (Number.isNaN(size)) return undefined;
  const w = frame(size);
  w.uint(2, r.remainingBytes);
  if (blob.length > 0) {
    w.len(3, blob.length);
    w.buf.set(blob, w.pos);
  }
  return w.buf;
}

function encodeRangeResponse(msg: unknown): Buffer | undefined {
  const r = msg as RangeResponse;
  if (hasUnknown(r)) return undefined;
  const hs = r.header === undefined ? -1 : headerSize(r.header);
  const kvs = r.kvs ?? [];
  let size = (hs < 0 ? 0 : lenField(hs)) + (r.more === true ? 2 : 0) + uintField(r.count);
  const kvSizes = new Array<number>(kvs.length);
  for (let i = 0; i < kvs.length; i++) {
    kvSizes[i] = kvSize(kvs[i]);
    size += lenField(kvSizes[i]);
  }
  if (Number.isNaN(size)) return undefined;
  const w = frame(size);
  if (r.header !== undefined) w.header(r.header, hs);
  for (let i = 0; i < kvs.length; i++) w.kv(2, kvs[i], kvSizes[i]);
  if (r.more === true) {
    w.buf[w.pos++] = 3 << 3;
    w.buf[w.pos++] = 1;
  }
  w.uint(4, r.count);
  return w.buf;
}

function bool(w: Writer, field: number, v: boolean): void {
  if (!v) return;
  w.buf[w.pos++] = field << 3;
  w.buf[w.pos++] = 1;
}

/** An Event's size, and its KeyValues' (kv, prev_kv; -1 when absent) in sizes[0], sizes[1]. */
function eventSize(e: Event, sizes: number[]): number {
  if (e.$typeName !== "mvccpb.Event" || hasUnknown(e) || e.type < 0 || e.type > 127) return NaN;
  sizes[0] = e.kv === undefined ? -1 : kvSize(e.kv);
  sizes[1] = e.prevKv === undefined ? -1 : kvSize(e.prevKv);
  return (e.type === 0 ? 0 : 2) + (sizes[0] < 0 ? 0 : lenField(sizes[0])) + (sizes[1] < 0 ? 0 : lenField(sizes[1]));
}

// A watch event fans out to every watcher as responses that share the header, the Event objects and mostly the
// events arrays too (see EtcdServer.sharedHeader, WatchableStore's notify, ServerWatchStream's joins): their
// encodings are kept for the next response that shares them, so a revision seen by thousands of watchers is encoded
// once and copied.
let cachedHeader: ResponseHeader | undefined;
let cachedHeaderField: Buffer | undefined;
let cachedEvent: Event | undefined;
let cachedEventField: Buffer | undefined;
let cachedEvents: Event[] | undefined;
let cachedEventsField: Uint8Array | undefined;

/** Field 1 (the header), tag and length included; undefined when it does not fit the fast path. */
function headerField(h: ResponseHeader): Buffer | undefined {
  if (h === cachedHeader) return cachedHeaderField;
  const size = headerSize(h);
  let field: Buffer | undefined;
  if (!Number.isNaN(size)) {
    field = Buffer.allocUnsafeSlow(lenField(size));
    new Writer(field, 0).header(h, size);
  }
  cachedHeader = h;
  cachedHeaderField = field;
  return field;
}

/** Each event's encoding as field 11 (null: not for the fast path), for every response that carries the event. */
const eventFieldCache = new WeakMap<Event, Buffer | null>();

function eventField(e: Event): Buffer | undefined {
  if (e === cachedEvent) return cachedEventField;
  let field = eventFieldCache.get(e);
  if (field === undefined) {
    const sizes = [0, 0];
    const size = eventSize(e, sizes);
    field = null;
    if (!Number.isNaN(size)) {
      // its own memory: a slice of node's 8 KiB pool kept alive with the event would pin the whole slab
      const w = new Writer(Buffer.allocUnsafeSlow(lenField(size)), 0);
      writeEvent(w, e, size, sizes[0], sizes[1]);
      field = w.buf;
    }
    eventFieldCache.set(e, field);
  }
  cachedEvent = e;
  cachedEventField = field ?? undefined;
  return cachedEventField;
}

/** e as field 11, given its size and its KeyValues' (see eventSize). */
function writeEvent(w: Writer, e: Event, size: number, kvSize: number, prevKvSize: number): void {
  w.len(11, size);
  if (e.type !== 0) {
    w.buf[w.pos++] = 1 << 3;
    w.buf[w.pos++] = e.type;
  }
  if (e.kv !== undefined) w.kv(2, e.kv, kvSize);
  if (e.prevKv !== undefined) w.kv(3, e.prevKv, prevKvSize);
}

/** Sizes of the events of one eventsField: each event's, its kv's and its prev_kv's (reused). */
let eventSizes: number[] = [];
/**
 * The encoding of several events is only ever the cached one (cachedEventsField), copied into frames and replaced by
 * the next: it is made in one buffer, reused (a buffer of its own per events array was ~75 MiB of ArrayBuffers in a
 * fan-out of 2000 puts to 10k watchers).
 */
const EVENTS_SCRATCH_MAX = 1 << 20;
let eventsScratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * Every event as field 11, tags and lengths included; undefined when one does not fit the fast path. Several events
 * are written straight into one buffer: a catch-up hands out new Event objects on every pass, and a cached encoding
 * of each (a buffer of its own) only to be copied once was most of what a crowd's catch-up allocated.
 */
function eventsField(events: Event[]): Uint8Array | undefined {
  if (events === cachedEvents) return cachedEventsField;
  let field: Uint8Array | undefined;
  if (events.length === 1) field = eventField(events[0]);
  else {
    if (eventSizes.length < events.length * 3) eventSizes = new Array<number>(events.length * 3);
    const sizes = [0, 0];
    let total = 0;
    for (let i = 0; i < events.length; i++) {
      const size = eventSize(events[i], sizes);
      eventSizes[i * 3] = size;
      eventSizes[i * 3 + 1] = sizes[0];
      eventSizes[i * 3 + 2] = sizes[1];
      total += lenField(size);
    }
    if (!Number.isNaN(total)) {
      if (total > eventsScratch.length && total <= EVENTS_SCRATCH_MAX) {
        eventsScratch = Buffer.allocUnsafeSlow(Math.min(EVENTS_SCRATCH_MAX, Math.max(total, eventsScratch.length * 2)));
      }
      const w = new Writer(total <= eventsScratch.length ? eventsScratch : Buffer.allocUnsafeSlow(total), 0);
      for (let i = 0; i < events.length; i++) {
        writeEvent(w, events[i], eventSizes[i * 3], eventSizes[i * 3 + 1], eventSizes[i * 3 + 2]);
      }
      field = w.buf.subarray(0, total);
    }
  }
  cachedEvents = events;
  cachedEventsField = field;
  return field;
}

function encodeWatchResponse(msg: unknown): Buffer | undefined {
  const r = msg as WatchResponse;
  // negative IDs (-1: no watcher) and cancel reasons are rare: the generic encoder has them
  if (hasUnknown(r) || (r.watchId ?? 0n) < 0n || (r.cancelReason ?? "") !== "") return undefined;
  const header = r.header === undefined ? EMPTY : headerField(r.header);
  const events = r.events === undefined || r.events.length === 0 ? EMPTY : eventsField(r.events);
  if (header === undefined || events === undefined) return undefined;
  const size = header.length + uintField(r.watchId) + (r.created ? 2 : 0) + (r.canceled ? 2 : 0) +
    uintField(r.compactRevision) + (r.fragment ? 2 : 0) + events.length;
  if (Number.isNaN(size)) return undefined;
  const w = frame(size);
  w.buf.set(header, w.pos);
  w.pos += header.length;
  w.uint(2, r.watchId);
  bool(w, 3, r.created);
  bool(w, 4, r.canceled);
  w.uint(5, r.compactRevision);
  bool(w, 7, r.fragment);
  w.buf.set(events, w.pos);
  return w.buf;
}

/** By the response message's type name. */
export const FAST_FRAME_ENCODERS: ReadonlyMap<string, FrameEncoder> = new Map([
  ["etcdserverpb.PutResponse", encodePutResponse],
  ["etcdserverpb.RangeResponse", encodeRangeResponse],
  ["etcdserverpb.WatchResponse", encodeWatchResponse],
  ["etcdserverpb.SnapshotResponse", encodeSnapshotResponse],
]);

/** By the request message's type name; undefined steps aside for the generic decoder (and its error message). */
export const FAST_DECODERS: ReadonlyMap<string, (bytes: Uint8Array) => unknown> = new Map([
  ["etcdserverpb.WatchRequest", decodeWatchRequest],
]);

/**
 * WatchRequest as protobuf-es decodes it, for the messages clients send: fields it does not know, a oneof set twice,
 * negative or 2^53-and-above numbers and unknown filter values step aside.
 */
function decodeWatchRequest(bytes: Uint8Array): WatchRequest | undefined {
  return decodeOrStepAside(bytes, readWatchRequest);
}

function readWatchRequest(r: ProtoReader): WatchRequest | undefined {
  let union: WatchRequest["requestUnion"] = { case: undefined };
  while (!r.done()) {
    const tag = r.uvarint(), wire = tag & 7;
    if (wire !== WIRE_BYTES || union.case !== undefined) return undefined;
    switch (tag >>> 3) {
      case 1: {
        const value = decodeWatchCreate(r.sub());
        if (value === undefined) return undefined;
        union = { case: "createRequest", value };
        break;
      }
      case 2: {
        const c = r.sub();
        let watchId = 0n;
        while (!c.done()) {
          if (c.uvarint() !== (1 << 3 | WIRE_VARINT)) return undefined;
          watchId = BigInt(c.uvarint());
        }
        union = { case: "cancelRequest", value: { $typeName: "etcdserverpb.WatchCancelRequest", watchId } };
        break;
      }
      case 3:
        if (!r.sub().done()) return undefined;
        union = { case: "progressRequest", value: { $typeName: "etcdserverpb.WatchProgressRequest" } };
        break;
      default:
        return undefined;
    }
  }
  return { $typeName: "etcdserverpb.WatchRequest", requestUnion: union };
}

function decodeWatchCreate(r: ProtoReader): WatchCreateRequest | undefined {
  const c: WatchCreateRequest = {
    $typeName: "etcdserverpb.WatchCreateRequest",
    key: EMPTY_BYTES,
    rangeEnd: EMPTY_BYTES,
    startRevision: 0n,
    progressNotify: false,
    filters: [],
    prevKv: false,
    watchId: 0n,
    fragment: false,
  };
  while (!r.done()) {
    const tag = r.uvarint(), field = tag >>> 3, wire = tag & 7;
    if (field === 5) {
      r.repeatedUvarint(wire, c.filters);
      continue;
    }
    if (wire !== (field <= 2 ? WIRE_BYTES : WIRE_VARINT)) return undefined;
    switch (field) {
      case 1:
        c.key = r.bytes();
        break;
      case 2:
        c.rangeEnd = r.bytes();
        break;
      case 3:
        c.startRevision = BigInt(r.uvarint());
        break;
      case 4:
        c.progressNotify = r.bool();
        break;
      case 6:
        c.prevKv = r.bool();
        break;
      case 7:
        c.watchId = BigInt(r.uvarint());
        break;
      case 8:
        c.fragment = r.bool();
        break;
      default:
        return undefined;
    }
  }
  return c.filters.every((f) => f === 0 || f === 1) ? c : undefined;
}
