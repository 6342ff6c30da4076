// What a raft entry carries: an InternalRaftRequest in protobuf. Puts — the hot write
// path — are encoded by hand (the generic reflection encoder was the largest single cost
// of a put), and decoded by hand (every follower applies every put); everything else goes
// through protobuf-es. Both give the same bytes and the same messages.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type InternalRaftRequest, InternalRaftRequestSchema } from "../rpc/gen/etcdserverpb/raft_internal_pb.ts";
import type { PutRequest } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { EMPTY_BYTES } from "../mvcc/bytes.ts";
import {
  bytesFieldSize,
  decodeOrStepAside,
  ProtoReader,
  ProtoWriter,
  uvarint64Size,
  uvarintSize,
  WIRE_BYTES,
  WIRE_VARINT,
} from "../wal/proto_wire.ts";

const ID_FIELD = 1;
const PUT_FIELD = 4;

export function encodeRequest(req: InternalRaftRequest): Uint8Array {
  const put = req.put;
  if (put !== undefined && put.lease === 0n && isOnlyPut(req)) return encodePut(req.ID, put);
  return toBinary(InternalRaftRequestSchema, req);
}

function isOnlyPut(req: InternalRaftRequest): boolean {
  for (const k in req) {
    if (
      k !== "$typeName" && k !== "ID" && k !== "put" && (req as unknown as Record<string, unknown>)[k] !== undefined
    ) {
      return false;
    }
  }
  return true;
}

/** Field by field as protobuf-es writes them: declaration order, proto3 defaults left out. */
function encodePut(id: bigint, p: PutRequest): Uint8Array {
  let putLen = 0;
  if (p.key.length > 0) putLen += bytesFieldSize(p.key.length);
  if (p.value.length > 0) putLen += bytesFieldSize(p.value.length);
  if (p.prevKv) putLen += 2;
  if (p.ignoreValue) putLen += 2;
  if (p.ignoreLease) putLen += 2;
  const w = new ProtoWriter((id !== 0n ? 1 + uvarint64Size(id) : 0) + 1 + uvarintSize(putLen) + putLen);
  if (id !== 0n) w.uvarint64Field(ID_FIELD, id);
  w.tag(PUT_FIELD, WIRE_BYTES);
  w.uvarint(putLen);
  if (p.key.length > 0) w.bytesField(1, p.key);
  if (p.value.length > 0) w.bytesField(2, p.value);
  if (p.prevKv) w.varintField(4, 1);
  if (p.ignoreValue) w.varintField(5, 1);
  if (p.ignoreLease) w.varintField(6, 1);
  return w.view();
}

/** An entry's request, as protobuf-es's fromBinary gives it. */
export function decodeRequest(data: Uint8Array): InternalRaftRequest {
  return decodeOrStepAside(data, decodePut) ?? fromBinary(InternalRaftRequestSchema, data);
}

const CLUSTER_VERSION_SET_FIELD = 1300;
const CLUSTER_MEMBER_ATTR_SET_FIELD = 1301;

/**
 * Whether an entry's request sets the cluster version or a member's attributes (what a restart replays for the
 * membership's sake), from its top-level field tags alone: a restart visits tens of thousands of entries the backend
 * already holds, and decoding each was most of that replay.
 */
export function isMembershipRecord(data: Uint8Array, start = 0, end = data.length): boolean {
  const r = new ProtoReader(data, start, end);
  while (!r.done()) {
    const tag = r.uvarint();
    const field = tag >>> 3;
    if (field === CLUSTER_VERSION_SET_FIELD || field === CLUSTER_MEMBER_ATTR_SET_FIELD) return true;
    r.skip(tag & 7);
  }
  return false;
}

/** A request of an ID and a put alone, as encodePut writes it; undefined for anything else (protobuf-es has it). */
function decodePut(r: ProtoReader): InternalRaftRequest | undefined {
  let id = 0n;
  let put: PutRequest | null | undefined;
  while (!r.done()) {
    const tag = r.uvarint();
    if (tag === (ID_FIELD << 3 | WIRE_VARINT)) id = r.uvarint64();
    // a second put would be merged into the first: protobuf-es's to do
    else if (tag === (PUT_FIELD << 3 | WIRE_BYTES) && put === undefined) put = decodePutRequest(r.sub());
    else return undefined;
    if (put === null) return undefined;
  }
  if (put === undefined) return undefined;
  // the other fields are messages, left unset as protobuf-es leaves them
  return { $typeName: "etcdserverpb.InternalRaftRequest", ID: id, put } as InternalRaftRequest;
}

/** PutRequest's fields (a repeated one: the last wins, as protobuf's); null for a field it does not know. */
function decodePutRequest(r: ProtoReader): PutRequest | null {
  const p: PutRequest = {
    $typeName: "etcdserverpb.PutRequest",
    key: EMPTY_BYTES,
    value: EMPTY_BYTES,
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
  };
  while (!r.done()) {
    switch (r.uvarint()) {
      case 1 << 3 | WIRE_BYTES:
        p.key = r.bytes();
        break;
      case 2 << 3 | WIRE_BYTES:
        p.value = r.bytes();
        break;
      case 3 << 3 | WIRE_VARINT:
        p.lease = r.varint64();
        break;
      case 4 << 3 | WIRE_VARINT:
        p.prevKv = r.bool();
        break;
      case 5 << 3 | WIRE_VARINT:
        p.ignoreValue = r.bool();
        break;
      case 6 << 3 | WIRE_VARINT:
        p.ignoreLease = r.bool();
        break;
      default:
        return null;
    }
  }
  return p;
}

/**
 * The low 48 bits of InternalRaftRequest.ID (see IdGenerator.next) when its high 16 are `prefix`, without decoding
 * the rest (the ID is declared, so encoded, first); -1 for an entry without an ID or with another member's.
 */
export function peekRequestId(data: Uint8Array, prefix: number): number {
  if (data.length === 0 || data[0] !== (ID_FIELD << 3)) return -1;
  // a varint byte carries 7 bits: its first 7 bytes bits 0-48, the rest bits 49-63
  let low = 0, mul = 1, pos = 1, b = 0x80;
  for (; pos < 8 && b >= 0x80; pos++) {
    b = data[pos];
    low += (b & 0x7f) * mul;
    mul *= 128;
  }
  let high = Math.floor(low / 2 ** 48);
  for (let shift = 1; b >= 0x80 && pos < 11; pos++, shift += 7) {
    b = data[pos];
    high += (b & 0x7f) * 2 ** shift;
  }
  high %= 0x10000;
  return high === prefix ? low % 2 ** 48 : -1;
}
