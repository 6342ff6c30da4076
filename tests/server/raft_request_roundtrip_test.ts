// The leader applies the proposer's in-memory request; followers and a restarted member apply the entry's logged
// bytes. They must be the same request: for every kind of request and every field of it (each oneof case in turn),
// decoding what encodeRequest logged gives back exactly the request, so a field an encoder drops fails here.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { create, type DescField, type DescMessage, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { type InternalRaftRequest, InternalRaftRequestSchema } from "../../rpc/gen/etcdserverpb/raft_internal_pb.ts";
import { decodeRequest, encodeRequest } from "../../server/raft_request_codec.ts";

/** The request kinds detcd proposes and applies. */
const KINDS: (keyof typeof InternalRaftRequestSchema.field)[] = [
  "put",
  "deleteRange",
  "txn",
  "compaction",
  "range",
  "leaseGrant",
  "leaseRevoke",
  "leaseCheckpoint",
  "alarm",
  "clusterMemberAttrSet",
  "clusterVersionSet",
];

/** A value for every scalar type, none of them the default (which the encoders may leave out). */
function scalar(t: ScalarType, n: number): unknown {
  switch (t) {
    case ScalarType.BOOL:
      return true;
    case ScalarType.STRING:
      return `s${n}`;
    case ScalarType.BYTES:
      return Uint8Array.of(n, 0, 255, n + 1);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return n % 2 === 0 ? 0x694d_7a1b_2c3d_4e5fn + BigInt(n) : -BigInt(n + 1);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return 0x8e9e_05c5_2164_694dn + BigInt(n);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return n + 0.5;
    default:
      return n + 1;
  }
}

/**
 * An init object with every field of `desc` set (messages down to `depth`), taking oneof case `variant` modulo the
 * number of cases, so that successive variants cover every case.
 */
function fill(desc: DescMessage, variant: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let n = 1;
  const value = (f: DescField): unknown => {
    n++;
    switch (f.fieldKind) {
      case "scalar":
        return scalar(f.scalar, n);
      case "enum":
        return f.enum.values[f.enum.values.length - 1].number;
      case "message":
        return depth > 0 ? create(f.message, fill(f.message, variant + n, depth - 1)) : undefined;
      case "list":
        if (f.listKind === "scalar") return [scalar(f.scalar, n), scalar(f.scalar, n + 1)];
        if (f.listKind === "enum") return [f.enum.values[f.enum.values.length - 1].number];
        return depth > 0 ? [create(f.message, fill(f.message, variant + n, depth - 1))] : [];
      case "map":
        return {};
    }
  };
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const f = member.fields[variant % member.fields.length];
      const v = value(f);
      if (v !== undefined) out[member.localName] = { case: f.localName, value: v };
    } else {
      const v = value(member);
      if (v !== undefined) out[member.localName] = v;
    }
  }
  return out;
}

Deno.test("every request kind and field survives the entry encoding, each oneof case in turn", () => {
  let checked = 0;
  for (const kind of KINDS) {
    const field = InternalRaftRequestSchema.field[kind];
    if (field === undefined || field.fieldKind !== "message") throw new Error(`no request kind ${kind}`);
    for (let variant = 0; variant < 4; variant++) {
      const init: Record<string, unknown> = { ID: 0x694d_0192_3456_7801n + BigInt(variant) };
      init[kind] = create(field.message, fill(field.message, variant, 4));
      const req: InternalRaftRequest = create(InternalRaftRequestSchema, init);
      const logged = encodeRequest(req);
      assertEquals(decodeRequest(logged), req, `${kind}, variant ${variant}`);
      checked++;
    }
  }
  assertEquals(checked, KINDS.length * 4);
});

Deno.test("the hand-encoded put path gets every put field too (a lease-less put with all flags)", () => {
  for (const lease of [0n, 7n]) {
    const putField = InternalRaftRequestSchema.field.put;
    if (putField.fieldKind !== "message") throw new Error("put is a message");
    const put = { ...fill(putField.message, 0, 1), lease };
    const req = create(InternalRaftRequestSchema, { ID: 0x694d_0000_0000_0001n, put });
    assertEquals(fromBinary(InternalRaftRequestSchema, encodeRequest(req)), req);
  }
});
