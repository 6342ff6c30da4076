// Turns whatever a service implementation throws into a gRPC status (code + message), the common currency of
// every protocol on the client port: gRPC trailers, Connect/gRPC-web errors and the JSON gateway's error body.

import { Code, ConnectError } from "@connectrpc/connect";
import { GrpcCode, isGrpcCode } from "./status_codes.ts";

export interface RpcStatus {
  readonly code: number;
  readonly message: string;
}

export function statusFromError(err: unknown): RpcStatus {
  if (err instanceof ConnectError) return { code: err.code, message: err.rawMessage };
  if (err instanceof Error) {
    // The server's RpcError (and anything shaped like it) carries a gRPC code next to etcd's message.
    const code = (err as { code?: unknown }).code;
    if (isGrpcCode(code)) return { code, message: err.message };
    if (err.name === "AbortError") return { code: GrpcCode.Canceled, message: "context canceled" };
    return { code: GrpcCode.Unknown, message: err.message };
  }
  return { code: GrpcCode.Unknown, message: String(err) };
}

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const { code, message } = statusFromError(err);
  return new ConnectError(message, code as Code, undefined, undefined, err);
}

export function unimplementedError(serviceTypeName: string, methodName: string): ConnectError {
  return new ConnectError(`detcd: ${serviceTypeName}.${methodName} is not implemented yet`, Code.Unimplemented);
}

// gRPC's Status-Message encoding: UTF-8, then percent-encode every byte outside printable ASCII and '%' itself.
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const b of new TextEncoder().encode(message)) {
    out += b < 0x20 || b > 0x7e || b === 0x25
      ? "%" + b.toString(16).toUpperCase().padStart(2, "0")
      : String.fromCharCode(b);
  }
  return out;
}
