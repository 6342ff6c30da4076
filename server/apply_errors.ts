/**
 * RpcError: an error carrying a gRPC status code, and the etcd rpctypes errors (etcdserver/api/v3rpc/rpctypes)
 * with their exact codes and messages. The gRPC layer turns RpcError into a status; clients match on messages.
 */

import { GrpcCode } from "../rpc/status_codes.ts";
import { ErrCompacted, ErrFutureRev } from "../mvcc/errors.ts";

export { GrpcCode };

export class RpcError extends Error {
  /** gRPC status code. */
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.name = "RpcError";
    this.code = code;
  }
}

export const ErrGRPCEmptyKey = new RpcError(GrpcCode.InvalidArgument, "etcdserver: key is not provided");
export const ErrGRPCKeyNotFound = new RpcError(GrpcCode.InvalidArgument, "etcdserver: key not found");
export const ErrGRPCValueProvided = new RpcError(GrpcCode.InvalidArgument, "etcdserver: value is provided");
export const ErrGRPCLeaseProvided = new RpcError(GrpcCode.InvalidArgument, "etcdserver: lease is provided");
export const ErrGRPCTooManyOps = new RpcError(
  GrpcCode.InvalidArgument,
  "etcdserver: too many operations in txn request",
);
export const ErrGRPCDuplicateKey = new RpcError(
  GrpcCode.InvalidArgument,
  "etcdserver: duplicate key given in txn request",
);
export const ErrGRPCCompacted = new RpcError(
  GrpcCode.OutOfRange,
  "etcdserver: mvcc: required revision has been compacted",
);
export const ErrGRPCFutureRev = new RpcError(
  GrpcCode.OutOfRange,
  "etcdserver: mvcc: required revision is a future revision",
);
export const ErrGRPCNoSpace = new RpcError(GrpcCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded");
export const ErrGRPCLeaseNotFound = new RpcError(GrpcCode.NotFound, "etcdserver: requested lease not found");
export const ErrGRPCLeaseExist = new RpcError(GrpcCode.FailedPrecondition, "etcdserver: lease already exists");
export const ErrGRPCLeaseTTLTooLarge = new RpcError(GrpcCode.OutOfRange, "etcdserver: too large lease TTL");
export const ErrGRPCWatchCanceled = new RpcError(GrpcCode.Canceled, "etcdserver: watch canceled");
export const ErrGRPCMemberExist = new RpcError(GrpcCode.FailedPrecondition, "etcdserver: member ID already exist");
export const ErrGRPCPeerURLExist = new RpcError(GrpcCode.FailedPrecondition, "etcdserver: Peer URLs already exists");
export const ErrGRPCMemberNotEnoughStarted = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: re-configuration failed due to not enough started members",
);
export const ErrGRPCMemberBadURLs = new RpcError(GrpcCode.InvalidArgument, "etcdserver: given member URLs are invalid");
export const ErrGRPCMemberNotFound = new RpcError(GrpcCode.NotFound, "etcdserver: member not found");
export const ErrGRPCMemberNotLearner = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: can only promote a learner member",
);
export const ErrGRPCLearnerNotReady = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: can only promote a learner member which is in sync with leader",
);
export const ErrGRPCTooManyLearners = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: too many learner members in cluster",
);
export const ErrGRPCRequestTooLarge = new RpcError(GrpcCode.InvalidArgument, "etcdserver: request is too large");
export const ErrGRPCRequestTooManyRequests = new RpcError(GrpcCode.ResourceExhausted, "etcdserver: too many requests");
export const ErrGRPCRootUserNotExist = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: root user does not exist",
);
export const ErrGRPCRootRoleNotExist = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: root user does not have root role",
);
export const ErrGRPCUserAlreadyExist = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: user name already exists",
);
export const ErrGRPCUserEmpty = new RpcError(GrpcCode.InvalidArgument, "etcdserver: user name is empty");
export const ErrGRPCUserNotFound = new RpcError(GrpcCode.FailedPrecondition, "etcdserver: user name not found");
export const ErrGRPCRoleAlreadyExist = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: role name already exists",
);
export const ErrGRPCRoleNotFound = new RpcError(GrpcCode.FailedPrecondition, "etcdserver: role name not found");
export const ErrGRPCRoleEmpty = new RpcError(GrpcCode.InvalidArgument, "etcdserver: role name is empty");
export const ErrGRPCAuthFailed = new RpcError(
  GrpcCode.InvalidArgument,
  "etcdserver: authentication failed, invalid user ID or password",
);
export const ErrGRPCPermissionDenied = new RpcError(GrpcCode.PermissionDenied, "etcdserver: permission denied");
export const ErrGRPCRoleNotGranted = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: role is not granted to the user",
);
export const ErrGRPCPermissionNotGranted = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: permission is not granted to the role",
);
export const ErrGRPCAuthNotEnabled = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: authentication is not enabled",
);
export const ErrGRPCInvalidAuthToken = new RpcError(GrpcCode.Unauthenticated, "etcdserver: invalid auth token");
export const ErrGRPCInvalidAuthMgmt = new RpcError(GrpcCode.InvalidArgument, "etcdserver: invalid auth management");
export const ErrGRPCAuthOldRevision = new RpcError(
  GrpcCode.InvalidArgument,
  "etcdserver: revision of auth store is old",
);
export const ErrGRPCNoLeader = new RpcError(GrpcCode.Unavailable, "etcdserver: no leader");
export const ErrGRPCNotLeader = new RpcError(GrpcCode.FailedPrecondition, "etcdserver: not leader");
export const ErrGRPCLeaderChanged = new RpcError(GrpcCode.Unavailable, "etcdserver: leader changed");
export const ErrGRPCNotCapable = new RpcError(GrpcCode.Unavailable, "etcdserver: not capable");
export const ErrGRPCStopped = new RpcError(GrpcCode.Unavailable, "etcdserver: server stopped");
export const ErrGRPCTimeout = new RpcError(GrpcCode.Unavailable, "etcdserver: request timed out");
export const ErrGRPCTimeoutDueToLeaderFail = new RpcError(
  GrpcCode.Unavailable,
  "etcdserver: request timed out, possibly due to previous leader failure",
);
export const ErrGRPCTimeoutDueToConnectionLost = new RpcError(
  GrpcCode.Unavailable,
  "etcdserver: request timed out, possibly due to connection lost",
);
export const ErrGRPCTimeoutWaitAppliedIndex = new RpcError(
  GrpcCode.Unavailable,
  "etcdserver: request timed out, waiting for the applied index took too long",
);
export const ErrGRPCUnhealthy = new RpcError(GrpcCode.Unavailable, "etcdserver: unhealthy cluster");
export const ErrGRPCCorrupt = new RpcError(GrpcCode.DataLoss, "etcdserver: corrupt cluster");
export const ErrGPRCNotSupportedForLearner = new RpcError(
  GrpcCode.Unavailable,
  "etcdserver: rpc not supported for learner",
);
export const ErrGRPCBadLeaderTransferee = new RpcError(
  GrpcCode.FailedPrecondition,
  "etcdserver: bad leader transferee",
);
/** Not one of etcd's gRPC errors: a plain error, so code Unknown with its text. */
export const ErrTimeoutLeaderTransfer = new RpcError(
  GrpcCode.Unknown,
  "etcdserver: request timed out, leader transfer took too long",
);

/** Every rpctypes error by message, like rpctypes.errStringToError (clients map messages back to errors). */
export const ERRORS_BY_MESSAGE: ReadonlyMap<string, RpcError> = new Map(
  [
    ErrGRPCEmptyKey,
    ErrGRPCKeyNotFound,
    ErrGRPCValueProvided,
    ErrGRPCLeaseProvided,
    ErrGRPCTooManyOps,
    ErrGRPCDuplicateKey,
    ErrGRPCCompacted,
    ErrGRPCFutureRev,
    ErrGRPCNoSpace,
    ErrGRPCLeaseNotFound,
    ErrGRPCLeaseExist,
    ErrGRPCLeaseTTLTooLarge,
    ErrGRPCWatchCanceled,
    ErrGRPCMemberExist,
    ErrGRPCPeerURLExist,
    ErrGRPCMemberNotEnoughStarted,
    ErrGRPCMemberBadURLs,
    ErrGRPCMemberNotFound,
    ErrGRPCMemberNotLearner,
    ErrGRPCLearnerNotReady,
    ErrGRPCTooManyLearners,
    ErrGRPCRequestTooLarge,
    ErrGRPCRequestTooManyRequests,
    ErrGRPCRootUserNotExist,
    ErrGRPCRootRoleNotExist,
    ErrGRPCUserAlreadyExist,
    ErrGRPCUserEmpty,
    ErrGRPCUserNotFound,
    ErrGRPCRoleAlreadyExist,
    ErrGRPCRoleNotFound,
    ErrGRPCRoleEmpty,
    ErrGRPCAuthFailed,
    ErrGRPCPermissionDenied,
    ErrGRPCRoleNotGranted,
    ErrGRPCPermissionNotGranted,
    ErrGRPCAuthNotEnabled,
    ErrGRPCInvalidAuthToken,
    ErrGRPCInvalidAuthMgmt,
    ErrGRPCAuthOldRevision,
    ErrGRPCNoLeader,
    ErrGRPCNotLeader,
    ErrGRPCLeaderChanged,
    ErrGRPCNotCapable,
    ErrGRPCStopped,
    ErrGRPCTimeout,
    ErrGRPCTimeoutDueToLeaderFail,
    ErrGRPCTimeoutDueToConnectionLost,
    ErrGRPCTimeoutWaitAppliedIndex,
    ErrGRPCUnhealthy,
    ErrGRPCCorrupt,
    ErrGPRCNotSupportedForLearner,
    ErrGRPCBadLeaderTransferee,
  ].map((e) => [e.message, e]),
);

/** The rpctypes error for an mvcc error (etcd's togRPCError); anything else as it is. */
export function toRpcError(e: unknown): unknown {
  if (e === ErrCompacted) return ErrGRPCCompacted;
  if (e === ErrFutureRev) return ErrGRPCFutureRev;
  return e;
}
