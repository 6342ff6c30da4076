// Maintenance.Snapshot, as etcd's maintenanceServer.Snapshot: the backend as a bbolt file in 32 KiB blobs, each with
// the bytes still to come, then the file's SHA-256 as a last blob, which `etcdctl snapshot restore` checks.
import { createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SnapshotResponseSchema } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import type { Backend } from "../mvcc/backend.ts";
import type { Logger } from "./logger.ts";

const SEND_BUFFER_BYTES = 32 * 1024; // etcd's snapshotSendBufferSize

type SnapshotResponse = MessageInitShape<typeof SnapshotResponseSchema>;

/**
 * The backend as it is when called, streamed: a blob is made only when the transport has room for it (it pulls), so
 * a slow client holds one blob, not the file.
 */
export async function* snapshot(backend: Backend, logger: Logger): AsyncGenerator<SnapshotResponse> {
  const image = backend.boltImage();
  const total = image.size;
  const start = performance.now();
  logger.info("sending database snapshot to client", { "total-bytes": total, size: humanBytes(total) });
  const sha = createHash("sha256");
  let sent = 0;
  for (const blob of image.pieces(SEND_BUFFER_BYTES)) {
    sent += blob.length;
    sha.update(blob);
    yield { remainingBytes: BigInt(total - sent), blob };
  }
  const digest = sha.digest();
  logger.info("sending database sha256 checksum to client", { "total-bytes": total, "checksum-size": digest.length });
  yield { remainingBytes: 0n, blob: new Uint8Array(digest) };
  logger.info("successfully sent database snapshot to client", {
    "total-bytes": total,
    size: humanBytes(total),
    took: `${((performance.now() - start) / 1000).toFixed(6)}s`,
  });
}

/** go-humanize's Bytes: SI units, one decimal under 10 ("4.1 kB", "16 MB"). */
function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const v = n / 1000 ** e;
  return `${v < 10 ? (Math.floor(v * 10 + 0.5) / 10).toFixed(1) : Math.floor(v + 0.5)} ${units[e]}`;
}
