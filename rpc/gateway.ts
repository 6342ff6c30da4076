// etcd's JSON gateway (grpc-gateway v1 as etcd 3.4 configures it): POST /v3/... with a JSON request message,
// answered with JSON using proto field names, int64 as strings, bytes as base64 and default values omitted.
// Errors are {"error", "code", "message"} with grpc-gateway's HTTP status for the code.

import { Buffer } from "node:buffer";
import type { H2ServerRequest, H2ServerResponse } from "./h2/compat.ts";
import type { H1ServerRequest, H1ServerResponse } from "./h1/connection.ts";
import { create, type DescMessage, fromJson, type JsonValue, type MessageShape, toJson } from "@bufbuild/protobuf";
import { createHandlerContext } from "@connectrpc/connect";
import { type RpcStatus, statusFromError } from "./rpc_status.ts";
import type { MethodEntry, MethodTable } from "./services.ts";
import { GrpcCode, httpStatusFromGrpcCode } from "./status_codes.ts";

type Req = H1ServerRequest | H2ServerRequest;
type Res = H1ServerResponse | H2ServerResponse;

// Paths from the google.api.http annotations of etcd 3.4's rpc.proto ("/v3/kv/lease/..." are its additional
// bindings), v3lock.proto and v3election.proto. Hash and HashKV share /v3/maintenance/hash there; grpc-gateway's mux serves the first handler
// registered for a pattern, Hash (checked against etcd 3.4.23), so HashKV has no gateway path.
const ROUTES: Record<string, string> = {
  "/v3/kv/range": "/etcdserverpb.KV/Range",
  "/v3/kv/put": "/etcdserverpb.KV/Put",
  "/v3/kv/deleterange": "/etcdserverpb.KV/DeleteRange",
  "/v3/kv/txn": "/etcdserverpb.KV/Txn",
  "/v3/kv/compaction": "/etcdserverpb.KV/Compact",
  "/v3/watch": "/etcdserverpb.Watch/Watch",
  "/v3/lease/grant": "/etcdserverpb.Lease/LeaseGrant",
  "/v3/lease/revoke": "/etcdserverpb.Lease/LeaseRevoke",
  "/v3/kv/lease/revoke": "/etcdserverpb.Lease/LeaseRevoke",
  "/v3/lease/keepalive": "/etcdserverpb.Lease/LeaseKeepAlive",
  "/v3/lease/timetolive": "/etcdserverpb.Lease/LeaseTimeToLive",
  "/v3/kv/lease/timetolive": "/etcdserverpb.Lease/LeaseTimeToLive",
  "/v3/lease/leases": "/etcdserverpb.Lease/LeaseLeases",
  "/v3/kv/lease/leases": "/etcdserverpb.Lease/LeaseLeases",
  "/v3/lock/lock": "/v3lockpb.Lock/Lock",
  "/v3/lock/unlock": "/v3lockpb.Lock/Unlock",
  "/v3/election/campaign": "/v3electionpb.Election/Campaign",
  "/v3/election/proclaim": "/v3electionpb.Election/Proclaim",
  "/v3/election/leader": "/v3electionpb.Election/Leader",
  "/v3/election/observe": "/v3electionpb.Election/Observe",
  "/v3/election/resign": "/v3electionpb.Election/Resign",
  "/v3/cluster/member/add": "/etcdserverpb.Cluster/MemberAdd",
  "/v3/cluster/member/remove": "/etcdserverpb.Cluster/MemberRemove",
  "/v3/cluster/member/update": "/etcdserverpb.Cluster/MemberUpdate",
  "/v3/cluster/member/list": "/etcdserverpb.Cluster/MemberList",
  "/v3/cluster/member/promote": "/etcdserverpb.Cluster/MemberPromote",
  "/v3/maintenance/alarm": "/etcdserverpb.Maintenance/Alarm",
  "/v3/maintenance/status": "/etcdserverpb.Maintenance/Status",
  "/v3/maintenance/defragment": "/etcdserverpb.Maintenance/Defragment",
  "/v3/maintenance/hash": "/etcdserverpb.Maintenance/Hash",
  "/v3/maintenance/snapshot": "/etcdserverpb.Maintenance/Snapshot",
  "/v3/maintenance/transfer-leadership": "/etcdserverpb.Maintenance/MoveLeader",
  "/v3/auth/enable": "/etcdserverpb.Auth/AuthEnable",
  "/v3/auth/disable": "/etcdserverpb.Auth/AuthDisable",
  "/v3/auth/authenticate": "/etcdserverpb.Auth/Authenticate",
  "/v3/auth/user/add": "/etcdserverpb.Auth/UserAdd",
  "/v3/auth/user/get": "/etcdserverpb.Auth/UserGet",
  "/v3/auth/user/list": "/etcdserverpb.Auth/UserList",
  "/v3/auth/user/delete": "/etcdserverpb.Auth/UserDelete",
  "/v3/auth/user/changepw": "/etcdserverpb.Auth/UserChangePassword",
  "/v3/auth/user/grant": "/etcdserverpb.Auth/UserGrantRole",
  "/v3/auth/user/revoke": "/etcdserverpb.Auth/UserRevokeRole",
  "/v3/auth/role/add": "/etcdserverpb.Auth/RoleAdd",
  "/v3/auth/role/get": "/etcdserverpb.Auth/RoleGet",
  "/v3/auth/role/list": "/etcdserverpb.Auth/RoleList",
  "/v3/auth/role/delete": "/etcdserverpb.Auth/RoleDelete",
  "/v3/auth/role/grant": "/etcdserverpb.Auth/RoleGrantPermission",
  "/v3/auth/role/revoke": "/etcdserverpb.Auth/RoleRevokePermission",
};

export const GATEWAY_PREFIX = "/v3/";

export type GatewayHandler = (req: Req, res: Res, path: string) => void;

export function createGatewayHandler(table: MethodTable, maxRecvBytes: number): GatewayHandler {
  const routes = new Map<string, MethodEntry>();
  for (const [path, grpcPath] of Object.entries(ROUTES)) {
    const entry = table.get(grpcPath);
    if (entry) routes.set(path, entry);
  }
  return (req, res, path) => {
    const entry = routes.get(path);
    if (!entry) return sendError(res, { code: GrpcCode.NotFound, message: "Not Found" }, 404);
    if (req.method !== "POST") {
      return sendError(res, { code: GrpcCode.Unimplemented, message: "Method Not Allowed" }, 405);
    }
    readBody(req, maxRecvBytes).then(
      (body) => serve(entry, req, res, body),
      (e) => sendError(res, statusFromError(e)),
    );
  };
}

async function serve(entry: MethodEntry, req: Req, res: Res, body: string) {
  const abort = new AbortController();
  // both response kinds are event emitters; their typings' overloads don't unify
  const events = res as unknown as { once(event: string, listener: () => void): unknown };
  events.once("close", () => abort.abort());
  const ctx = createHandlerContext({
    service: entry.service,
    method: entry.method,
    protocolName: "grpc-gateway",
    requestMethod: "POST",
    url: req.url ?? "",
    requestHeader: headersOf(req),
    requestSignal: abort.signal,
  });
  try {
    const input = entry.method.input;
    const output = entry.method.output;
    const call = entry.call;
    if (call.kind === "unary") {
      const out = await call.fn(parse(input, body), ctx);
      return sendJson(res, 200, JSON.stringify(encodeJson(output, out)));
    }
    // Streams answer newline-delimited {"result": ...} objects, as grpc-gateway does.
    const stream = call.kind === "server_streaming"
      ? call.fn(parse(input, body), ctx)
      : call.kind === "bidi_streaming"
      ? call.fn(iterate(splitJsonValues(body).map((v) => parse(input, v))), ctx)
      : undefined;
    if (!stream) {
      const out = await (call.fn as (r: AsyncIterable<unknown>, c: unknown) => Promise<unknown>)(
        iterate(splitJsonValues(body).map((v) => parse(input, v))),
        ctx,
      );
      return sendJson(res, 200, JSON.stringify(encodeJson(output, out)));
    }
    res.writeHead(200, { "content-type": "application/json" });
    try {
      for await (const m of stream) {
        if (!res.write(JSON.stringify({ result: encodeJson(output, m) }) + "\n")) {
          await new Promise<void>((resolve) => events.once("drain", resolve));
        }
        if (abort.signal.aborted) break;
      }
    } catch (e) {
      res.write(JSON.stringify({ error: errorBody(statusFromError(e)) }) + "\n");
    }
    res.end();
  } catch (e) {
    sendError(res, statusFromError(e));
  } finally {
    ctx.abort();
  }
}

async function* iterate<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

function parse(schema: DescMessage, body: string): MessageShape<DescMessage> {
  let json: JsonValue;
  try {
    json = body.trim() === "" ? {} : JSON.parse(body);
    // grpc-gateway's unmarshaler drops fields it doesn't know (so newer clients' requests still work) but refuses
    // unknown enum names; protobuf-es's ignoreUnknownFields would let those through too
    return fromJson(schema, dropUnknownFields(schema, json));
  } catch (e) {
    throw Object.assign(new Error((e as Error).message), { code: GrpcCode.InvalidArgument });
  }
}

/** `json` without the object keys `schema` has no field for, at any depth. */
function dropUnknownFields(schema: DescMessage, json: JsonValue): JsonValue {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return json;
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) continue;
    const message = field.fieldKind === "message" ||
        (field.fieldKind === "list" && field.listKind === "message") ||
        (field.fieldKind === "map" && field.mapKind === "message")
      ? field.message
      : undefined;
    if (message === undefined || value === null) out[key] = value;
    else if (field.fieldKind === "list" && Array.isArray(value)) {
      out[key] = value.map((v) => dropUnknownFields(message, v));
    } else if (field.fieldKind === "map" && typeof value === "object" && !Array.isArray(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, dropUnknownFields(message, v)]));
    } else out[key] = dropUnknownFields(message, value);
  }
  return out;
}

function encodeJson(schema: DescMessage, value: unknown): JsonValue {
  const msg = (value as { $typeName?: string }).$typeName === schema.typeName
    ? value as MessageShape<DescMessage>
    : create(schema, value as MessageShape<DescMessage>);
  return toJson(schema, msg, { useProtoFieldName: true });
}

// The body of a bidi call over the gateway is a sequence of JSON objects (grpc-gateway reads it with a
// json.Decoder); split it at top-level value boundaries.
function splitJsonValues(body: string): string[] {
  const out: string[] = [];
  let depth = 0, start = -1, inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (depth++ === 0) start = i;
    } else if (c === "}" || c === "]") {
      if (--depth === 0) out.push(body.slice(start, i + 1));
    }
  }
  return out;
}

function headersOf(req: Req): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (k[0] === ":" || v === undefined) continue;
    if (Array.isArray(v)) { for (const x of v) h.append(k, x); }
    else h.set(k, v);
  }
  return h;
}

// Reads at most maxBytes of body; more is refused without buffering it.
function readBody(req: Req, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    req.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners("data");
        req.resume();
        const message = `grpc: received message larger than max (${size} vs. ${maxBytes})`;
        return reject(Object.assign(new Error(message), { code: GrpcCode.ResourceExhausted }));
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(new TextDecoder().decode(Buffer.concat(chunks, size))));
    req.once("error", reject);
  });
}

function errorBody({ code, message }: RpcStatus) {
  return { error: message, code, message };
}

export function sendError(res: Res, status: RpcStatus, httpStatus = httpStatusFromGrpcCode(status.code)) {
  if (res.headersSent) return res.end();
  sendJson(res, httpStatus, JSON.stringify(errorBody(status)));
}

function sendJson(res: Res, status: number, body: string) {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
