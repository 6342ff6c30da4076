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
export const ErrWatcherNotExist = new MvccError("mvcc: watcher does not exist");
export const ErrEmptyWatcherRange = new MvccError("mvcc: watcher range is empty");
export const ErrWatcherDuplicateID = new MvccError("mvcc: duplicate watch ID provided on the WatchStream");
