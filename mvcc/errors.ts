/** Errors of the MVCC store, with etcd's texts. Compare by identity (err === ErrCompacted). */

export class MvccError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MvccError";
  }
}

export const ErrCompacted = new MvccError("mvcc: required revision has been compacted");
export const ErrFutureRev = new MvccError("mvcc: required revision is a future revision");
export const ErrClosed = new MvccError("mvcc: closed");
/** etcdserver.ErrNoSpace: a write would exceed the backend quota. */
export const ErrNoSpace = new MvccError("mvcc: database space exceeded");
