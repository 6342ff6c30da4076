// Binary codec for the raft types, wire-compatible with etcd's raftpb (raft.proto field
// numbers). Zero-valued scalars are omitted (etcd's gogo decoders accept that); decoding
// accepts every encoding etcd emits. Decoded byte fields are zero-copy views into the
// input buffer, so the caller must not reuse that buffer while the values live.

import {
  type ConfState,
  emptyConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  NONE,
  type Snapshot,
  type SnapshotMetadata,
} from "../raft/types.ts";
import { newMessage } from "../raft/util.ts";
import { bytesFieldSize, ProtoReader, ProtoWriter, uvarint64Size, varintFieldSize, WIRE_BYTES } from "./proto_wire.ts";

const EMPTY: Uint8Array = new Uint8Array(0);

// Only non-default values reach the wire.
function optVarintSize(v: number): number {
  return v === 0 ? 0 : varintFieldSize(v);
}

/** Node and request IDs: uint64, all of their bits. */
function optIdSize(v: bigint): number {
  return v === NONE ? 0 : 1 + uvarint64Size(v);
}

function optId(w: ProtoWriter, field: number, v: bigint): void {
  if (v !== NONE) w.uvarint64Field(field, v);
}

function optBytesSize(b: Uint8Array | undefined): number {
  return b === undefined || b.length === 0 ? 0 : bytesFieldSize(b.length);
}

function optVarint(w: ProtoWriter, field: number, v: number): void {
  if (v !== 0) w.varintField(field, v);
}

function optBytes(w: ProtoWriter, field: number, b: Uint8Array | undefined): void {
  if (b !== undefined && b.length !== 0) w.bytesField(field, b);
}

function nested(w: ProtoWriter, field: number, size: number): void {
  w.tag(field, WIRE_BYTES);
  w.uvarint(size);
}

function encodeWith<T>(v: T, size: (v: T) => number, write: (w: ProtoWriter, v: T) => void): Uint8Array {
  const n = size(v);
  const w = new ProtoWriter(n);
  write(w, v);
  if (w.pos !== n) throw new Error(`raft_codec: sized ${n} bytes but wrote ${w.pos}`);
  return w.buf;
}

// ---- Entry: Type=1 Term=2 Index=3 Data=4

export function entrySize(e: Entry): number {
  return optVarintSize(e.type) + optVarintSize(e.term) + optVarintSize(e.index) + optBytesSize(e.data);
}

export function writeEntry(w: ProtoWriter, e: Entry): void {
  optVarint(w, 1, e.type);
  optVarint(w, 2, e.term);
  optVarint(w, 3, e.index);
  optBytes(w, 4, e.data);
}

export function encodeEntry(e: Entry): Uint8Array {
  return encodeWith(e, entrySize, writeEntry);
}

/** An entry's fields with its data as a range of the buffer read: a WAL replay keeps ranges, not views. */
export interface EntryFields {
  term: number;
  index: number;
  type: number;
  /** The data are buf[dataStart, dataEnd): an empty range without any. */
  dataStart: number;
  dataEnd: number;
}

function readEntryFields(r: ProtoReader, out: EntryFields): void {
  out.term =
    out.index =
    out.type =
    out.dataStart =
    out.dataEnd =
      0;
  while (!r.done()) {
    const tag = r.uvarint();
    switch (tag) {
      case 0x08:
        out.type = r.uvarint();
        break;
      case 0x10:
        out.term = r.uvarint();
        break;
      case 0x18:
        out.index = r.uvarint();
        break;
      case 0x22:
        out.dataStart = r.bytesAt();
        out.dataEnd = r.pos;
        break;
      default:
        r.skip(tag & 7);
    }
  }
}

const scratch: EntryFields = { term: 0, index: 0, type: 0, dataStart: 0, dataEnd: 0 };

function readEntry(r: ProtoReader): Entry {
  readEntryFields(r, scratch);
  const { dataStart, dataEnd } = scratch;
  return {
    term: scratch.term,
    index: scratch.index,
    type: scratch.type,
    data: dataStart === dataEnd ? EMPTY : r.buf.subarray(dataStart, dataEnd),
  };
}

/** The fields of the entry encoded in b[start, end), into `out` (nothing made). */
export function entryFields(b: Uint8Array, start: number, end: number, out: EntryFields): void {
  readEntryFields(new ProtoReader(b, start, end), out);
}

export function decodeEntry(b: Uint8Array, start = 0, end = b.length): Entry {
  return readEntry(new ProtoReader(b, start, end));
}

// ---- HardState: term=1 vote=2 commit=3

function hardStateSize(s: HardState): number {
  return optVarintSize(s.term) + optIdSize(s.vote) + optVarintSize(s.commit);
}

function writeHardState(w: ProtoWriter, s: HardState): void {
  optVarint(w, 1, s.term);
  optId(w, 2, s.vote);
  optVarint(w, 3, s.commit);
}

export function encodeHardState(s: HardState): Uint8Array {
  return encodeWith(s, hardStateSize, writeHardState);
}

export function decodeHardState(b: Uint8Array): HardState {
  const r = new ProtoReader(b);
  const s: HardState = { term: 0, vote: NONE, commit: 0 };
  while (!r.done()) {
    const tag = r.uvarint();
    switch (tag) {
      case 0x08:
        s.term = r.uvarint();
        break;
      case 0x10:
        s.vote = r.uvarint64();
        break;
      case 0x18:
        s.commit = r.uvarint();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return s;
}

// ---- ConfState: voters=1 learners=2 voters_outgoing=3 learners_next=4 auto_leave=5
// Repeated fields are written unpacked, as proto2 (and etcd) does.

function idsSize(ids: NodeId[]): number {
  let n = 0;
  for (const id of ids) n += 1 + uvarint64Size(id);
  return n;
}

function writeIds(w: ProtoWriter, field: number, ids: NodeId[]): void {
  for (const id of ids) w.uvarint64Field(field, id);
}

function confStateSize(c: ConfState): number {
  return idsSize(c.voters) + idsSize(c.learners) + idsSize(c.votersOutgoing) + idsSize(c.learnersNext) +
    (c.autoLeave ? 2 : 0);
}

function writeConfState(w: ProtoWriter, c: ConfState): void {
  writeIds(w, 1, c.voters);
  writeIds(w, 2, c.learners);
  writeIds(w, 3, c.votersOutgoing);
  writeIds(w, 4, c.learnersNext);
  if (c.autoLeave) w.varintField(5, 1);
}

function readConfState(r: ProtoReader): ConfState {
  const c = emptyConfState();
  while (!r.done()) {
    const tag = r.uvarint();
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1:
        r.repeatedUvarint64(wire, c.voters);
        break;
      case 2:
        r.repeatedUvarint64(wire, c.learners);
        break;
      case 3:
        r.repeatedUvarint64(wire, c.votersOutgoing);
        break;
      case 4:
        r.repeatedUvarint64(wire, c.learnersNext);
        break;
      case 5:
        if (wire !== 0) throw new Error(`raft_codec: bad wire type ${wire} for ConfState.auto_leave`);
        c.autoLeave = r.bool();
        break;
      default:
        r.skip(wire);
    }
  }
  return c;
}

export function encodeConfState(c: ConfState): Uint8Array {
  return encodeWith(c, confStateSize, writeConfState);
}

export function decodeConfState(b: Uint8Array): ConfState {
  return readConfState(new ProtoReader(b));
}

// ---- SnapshotMetadata: conf_state=1 index=2 term=3; Snapshot: data=1 metadata=2

function metadataSize(m: SnapshotMetadata): number {
  return bytesFieldSize(confStateSize(m.confState)) + optVarintSize(m.index) + optVarintSize(m.term);
}

function writeMetadata(w: ProtoWriter, m: SnapshotMetadata): void {
  nested(w, 1, confStateSize(m.confState));
  writeConfState(w, m.confState);
  optVarint(w, 2, m.index);
  optVarint(w, 3, m.term);
}

function readMetadata(r: ProtoReader): SnapshotMetadata {
  const m: SnapshotMetadata = { confState: emptyConfState(), index: 0, term: 0 };
  while (!r.done()) {
    const tag = r.uvarint();
    switch (tag) {
      case 0x0a:
        m.confState = readConfState(r.sub());
        break;
      case 0x10:
        m.index = r.uvarint();
        break;
      case 0x18:
        m.term = r.uvarint();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return m;
}

function snapshotSize(s: Snapshot): number {
  return optBytesSize(s.data) + bytesFieldSize(metadataSize(s.metadata));
}

function writeSnapshot(w: ProtoWriter, s: Snapshot): void {
  optBytes(w, 1, s.data);
  nested(w, 2, metadataSize(s.metadata));
  writeMetadata(w, s.metadata);
}

function readSnapshot(r: ProtoReader): Snapshot {
  const s: Snapshot = { data: EMPTY, metadata: { confState: emptyConfState(), index: 0, term: 0 } };
  while (!r.done()) {
    const tag = r.uvarint();
    switch (tag) {
      case 0x0a:
        s.data = r.bytes();
        break;
      case 0x12:
        s.metadata = readMetadata(r.sub());
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return s;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encodeWith(s, snapshotSize, writeSnapshot);
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  return readSnapshot(new ProtoReader(b));
}

// ---- Message: type=1 to=2 from=3 term=4 logTerm=5 index=6 entries=7 commit=8
// snapshot=9 reject=10 rejectHint=11 context=12

export function messageSize(m: Message): number {
  let n = optVarintSize(m.type) + optIdSize(m.to) + optIdSize(m.from) + optVarintSize(m.term) +
    optVarintSize(m.logTerm) + optVarintSize(m.index) + optVarintSize(m.commit) + optVarintSize(m.rejectHint) +
    optBytesSize(m.context) + (m.reject ? 2 : 0);
  for (const e of m.entries) n += bytesFieldSize(entrySize(e));
  if (m.snapshot !== undefined) n += bytesFieldSize(snapshotSize(m.snapshot));
  return n;
}

export function writeMessage(w: ProtoWriter, m: Message): void {
  optVarint(w, 1, m.type);
  optId(w, 2, m.to);
  optId(w, 3, m.from);
  optVarint(w, 4, m.term);
  optVarint(w, 5, m.logTerm);
  optVarint(w, 6, m.index);
  for (const e of m.entries) {
    nested(w, 7, entrySize(e));
    writeEntry(w, e);
  }
  optVarint(w, 8, m.commit);
  if (m.snapshot !== undefined) {
    nested(w, 9, snapshotSize(m.snapshot));
    writeSnapshot(w, m.snapshot);
  }
  if (m.reject) w.varintField(10, 1);
  optVarint(w, 11, m.rejectHint);
  optBytes(w, 12, m.context);
}

export function encodeMessage(m: Message): Uint8Array {
  return encodeWith(m, messageSize, writeMessage);
}

export function decodeMessage(b: Uint8Array): Message {
  const r = new ProtoReader(b);
  const m = newMessage(0, NONE, NONE);
  while (!r.done()) {
    const tag = r.uvarint();
    switch (tag) {
      case 0x08:
        m.type = r.uvarint();
        break;
      case 0x10:
        m.to = r.uvarint64();
        break;
      case 0x18:
        m.from = r.uvarint64();
        break;
      case 0x20:
        m.term = r.uvarint();
        break;
      case 0x28:
        m.logTerm = r.uvarint();
        break;
      case 0x30:
        m.index = r.uvarint();
        break;
      case 0x3a:
        m.entries.push(readEntry(r.sub()));
        break;
      case 0x40:
        m.commit = r.uvarint();
        break;
      case 0x4a:
        m.snapshot = readSnapshot(r.sub());
        break;
      case 0x50:
        m.reject = r.bool();
        break;
      case 0x58:
        m.rejectHint = r.uvarint();
        break;
      case 0x62:
        m.context = r.bytes();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return m;
}
