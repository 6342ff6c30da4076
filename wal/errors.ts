// WAL and snapshot errors. Messages keep etcd's text so operators can search for them.

export class WalError extends Error {
  override name = "WalError";
}

export const ERR_CRC_MISMATCH = "wal: crc mismatch";
export const ERR_FILE_NOT_FOUND = "wal: file not found";
export const ERR_SNAPSHOT_NOT_FOUND = "wal: snapshot not found";
export const ERR_SNAPSHOT_MISMATCH = "wal: snapshot mismatch";
export const ERR_METADATA_CONFLICT = "wal: conflicting metadata found";
export const ERR_SLICE_OUT_OF_RANGE = "wal: slice bounds out of range";
export const ERR_MAX_ENTRY_SIZE = "wal: max entry size limit exceeded";
export const ERR_EXISTS = "wal: directory already holds a WAL";
export const ERR_LOCKED = "another process holds the lock on";

export class SnapError extends Error {
  override name = "SnapError";
}

export const ERR_NO_SNAPSHOT = "snap: no available snapshot";
export const ERR_EMPTY_SNAPSHOT = "snap: empty snapshot";
export const ERR_SNAP_CRC_MISMATCH = "snap: crc mismatch";
