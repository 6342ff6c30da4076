// What a raft entry carries: an InternalRaftRequest in protobuf. Puts — the hot write
// path — are encoded by hand (the generic reflection encoder was the largest single cost
// of a put), and decoded by hand (every follower applies every put); everything else goes
// through protobuf-es. Both give the same bytes and the same messages.
//
// Membership records go as etcd 3.4 proposes them: a bare v2 Request (etcdserverpb.Request, no InternalRaftRequest
// around it) that PUTs /0/members/<id>/attributes or /0/version in etcd's v2 store. etcd 3.4 applies nothing else for
// them (its v3 applier panics on an InternalRaftRequest it does not know), so an etcd member can share a log with
// detcd; such entries decode to the ClusterMemberAttrSet and ClusterVersionSet requests of etcd 3.5, which detcd
// wrote before and still reads.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type InternalRaftRequest, InternalRaftRequestSchema } from "../rpc/gen/etcdserverpb/raft_internal_pb.ts";
import type { PutRequest } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { EMPTY_BYTES } from "../mvcc/bytes.ts";
import { attributesJSON } from "./membership.ts";
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
  if (put !== undefined && put.lease === 0n && isOnly(req, "put")) return encodePut(req.ID, put);
  const attr = req.clusterMemberAttrSet;
  if (attr !== undefined && isOnly(req, "clusterMemberAttrSet")) {
    const json = attributesJSON(attr.memberAttributes?.name ?? "", attr.memberAttributes?.clientUrls ?? []);
    return encodeV2Put(req.ID, `/0/members/${attr.memberID.toString(16)}/attributes`, json);
  }
  const version = req.clusterVersionSet;
  if (version !== undefined && isOnly(req, "clusterVersionSet")) return encodeV2Put(req.ID, VERSION_PATH, version.ver);
  return toBinary(InternalRaftRequestSchema, req);
}

function isOnly(req: InternalRaftRequest, field: keyof InternalRaftRequest): boolean {
  for (const k in req) {
    if (
      k !== "$typeName" && k !== "ID" && k !== field && (req as unknown as Record<string, unknown>)[k] !== undefined
    ) {
      return false;
    }
  }
  return true;
}

// etcd 3.4's v2 Request (etcdserver.proto): ID, Method, Path, Val; the other fields are flags and numbers, but
// PrevValue (6), a string
const V2_METHOD_FIELD = 2;
const V2_PATH_FIELD = 3;
const V2_VAL_FIELD = 4;
const V2_PREV_VALUE_FIELD = 6;
const V2_LAST_FIELD = 17;
/** What etcd's v2 Request.Method holds: no InternalRaftRequest has a string there (its field 2 is a message). */
const V2_METHODS = new Set(["PUT", "POST", "DELETE", "QGET", "GET", "HEAD", "SYNC"]);
const MEMBER_ATTRIBUTES_PATH = /^\/0\/members\/([0-9a-f]{1,16})\/attributes$/;
const VERSION_PATH = "/0/version";
const text = new TextEncoder();
const untext = new TextDecoder();

/** A v2 PUT as etcd 3.4's gogo-protobuf writes the fields it uses (the zero ones it also writes change nothing). */
function encodeV2Put(id: bigint, path: string, val: string): Uint8Array {
  const [method, p, v] = [text.encode("PUT"), text.encode(path), text.encode(val)];
  const w = new ProtoWriter(11 + bytesFieldSize(method.length) + bytesFieldSize(p.length) + bytesFieldSize(v.length));
  w.uvarint64Field(ID_FIELD, id);
  w.bytesField(V2_METHOD_FIELD, method);
  w.bytesField(V2_PATH_FIELD, p);
  w.bytesField(V2_VAL_FIELD, v);
  return w.view();
}

interface V2Request {
  id: bigint;
  method: string;
  path: string;
  val: string;
}

/** A bare v2 Request, or undefined when the bytes are not one (see V2_METHODS). */
function readV2Request(r: ProtoReader): V2Request | undefined {
  const req: V2Request = { id: 0n, method: "", path: "", val: "" };
  while (!r.done()) {
    const tag = r.uvarint(), field = tag >>> 3, wire = tag & 7;
    if (field === ID_FIELD && wire === WIRE_VARINT) req.id = r.uvarint64();
    else if (field === V2_METHOD_FIELD && wire === WIRE_BYTES) req.method = untext.decode(r.bytes());
    else if (field === V2_PATH_FIELD && wire === WIRE_BYTES) req.path = untext.decode(r.bytes());
    else if (field === V2_VAL_FIELD && wire === WIRE_BYTES) req.val = untext.decode(r.bytes());
    else if (field === V2_PREV_VALUE_FIELD && wire === WIRE_BYTES) r.skip(wire);
    else if (field > V2_VAL_FIELD && field <= V2_LAST_FIELD && wire === WIRE_VARINT) r.skip(wire);
    else return undefined;
  }
  return V2_METHODS.has(req.method) ? req : undefined;
}

/**
 * A bare v2 Request as the InternalRaftRequest it stands for: a member's attributes or the cluster version, or, for
 * the v2 requests detcd has nothing to apply for (SYNC, keys of the v2 API), one with only its ID.
 */
function v2AsRequest(data: Uint8Array): InternalRaftRequest | undefined {
  const v2 = decodeOrStepAside(data, readV2Request);
  if (v2 === undefined) return undefined;
  const req = { $typeName: "etcdserverpb.InternalRaftRequest", ID: v2.id } as InternalRaftRequest;
  if (v2.method !== "PUT") return req;
  const member = MEMBER_ATTRIBUTES_PATH.exec(v2.path);
  if (member !== null) {
    const a = JSON.parse(v2.val) as { name?: string; clientURLs?: string[] };
    req.clusterMemberAttrSet = {
      $typeName: "etcdserverpb.ClusterMemberAttrSetRequest",
      memberID: BigInt(`0x${member[1]}`),
      memberAttributes: {
        $typeName: "etcdserverpb.MemberAttributes",
        name: a.name ?? "",
        clientUrls: a.clientURLs ?? [],
      },
    };
  } else if (v2.path === VERSION_PATH) {
    req.clusterVersionSet = { $typeName: "etcdserverpb.ClusterVersionSetRequest", ver: v2.val };
  }
  return req;
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
  return decodeOrStepAside(data, decodePut) ?? v2AsRequest(data) ?? fromBinary(InternalRaftRequestSchema, data);
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
    // a bare v2 Request's method (an InternalRaftRequest has no bytes in field 2): what it PUTs decides
    if (field === V2_METHOD_FIELD && (tag & 7) === WIRE_BYTES) return isV2MembershipRecord(data.subarray(start, end));
    r.skip(tag & 7);
  }
  return false;
}

function isV2MembershipRecord(data: Uint8Array): boolean {
  const v2 = decodeOrStepAside(data, readV2Request);
  return v2?.method === "PUT" && (v2.path === VERSION_PATH || MEMBER_ATTRIBUTES_PATH.test(v2.path));
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
