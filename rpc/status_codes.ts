// gRPC status codes and their names and HTTP statuses, in one place for every protocol the client port speaks.
// The numeric values equal connect's `Code` enum, so a code can be handed to ConnectError unchanged.

export const GrpcCode = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

export type GrpcCodeValue = (typeof GrpcCode)[keyof typeof GrpcCode];

// Canonical upper-case names as grpc-go prints them (codes.Code.String()).
const NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

// grpc-gateway v1 runtime.HTTPStatusFromCode, the table etcd 3.4's JSON gateway answers with.
const HTTP_STATUS = [200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401];

export function isGrpcCode(n: unknown): n is GrpcCodeValue {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 16;
}

export function grpcCodeName(code: number): string {
  return NAMES[code] ?? `Code(${code})`;
}

export function httpStatusFromGrpcCode(code: number): number {
  return HTTP_STATUS[code] ?? 500;
}
