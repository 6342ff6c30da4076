// The registry the server hands to the transport: etcd services and their implementations. Every protocol on the
// client port (gRPC fast path, Connect/gRPC-web, JSON gateway) dispatches through the method table built here, so a
// method behaves - and is missing - the same way everywhere.

import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { unimplementedError } from "./rpc_status.ts";

export interface ServiceRegistration {
  readonly service: DescService;
  // deno-lint-ignore no-explicit-any -- heterogeneous registry; `register` keeps each entry type-checked.
  readonly impl: Partial<ServiceImpl<any>>;
}

export type ServiceRegistry = readonly ServiceRegistration[];

export function register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>): ServiceRegistration {
  return { service, impl };
}

type Req = MessageShape<DescMessage>;
type Res = MessageInitShape<DescMessage>;

// Implementations normalised to one shape per kind; a missing method is a function throwing Unimplemented.
export type MethodCall =
  | { kind: "unary"; fn: (req: Req, ctx: HandlerContext) => Promise<Res> | Res }
  | { kind: "server_streaming"; fn: (req: Req, ctx: HandlerContext) => AsyncIterable<Res> }
  | { kind: "client_streaming"; fn: (reqs: AsyncIterable<Req>, ctx: HandlerContext) => Promise<Res> }
  | { kind: "bidi_streaming"; fn: (reqs: AsyncIterable<Req>, ctx: HandlerContext) => AsyncIterable<Res> };

/**
 * A streaming implementation's iterator may also hand over messages it already holds without a promise each
 * (undefined when it holds none): the gRPC path then writes such a backlog in one turn.
 */
export interface Backlogged<T> {
  takeSync(): T | undefined;
}

export interface MethodEntry {
  readonly path: string; // "/etcdserverpb.KV/Range", the gRPC and Connect request path
  readonly service: DescService;
  readonly method: DescMethod;
  readonly implemented: boolean;
  readonly call: MethodCall;
}

export type MethodTable = ReadonlyMap<string, MethodEntry>;

export function buildMethodTable(registry: ServiceRegistry): MethodTable {
  const table = new Map<string, MethodEntry>();
  for (const { service, impl } of registry) {
    for (const method of service.methods) {
      const path = `/${service.typeName}/${method.name}`;
      if (table.has(path)) throw new Error(`rpc: service ${service.typeName} registered twice`);
      const given = impl[method.localName] as MethodCall["fn"] | undefined;
      const fn = given ? given.bind(impl) : unimplemented(service, method);
      table.set(path, {
        path,
        service,
        method,
        implemented: !!given,
        call: { kind: method.methodKind, fn } as MethodCall,
      });
    }
  }
  return table;
}

function unimplemented(service: DescService, method: DescMethod): MethodCall["fn"] {
  const err = unimplementedError(service.typeName, method.name);
  if (method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming") {
    // deno-lint-ignore require-yield -- a stream that fails before its first message
    return async function* () {
      throw err;
    };
  }
  return () => Promise.reject(err);
}
