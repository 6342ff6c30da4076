// The leader's view of one follower's log.

import { Inflights } from "./inflights.ts";

export enum ProgressState {
  /** Unknown match: send one MsgApp per heartbeat interval until the follower answers. */
  Probe = 0,
  /** Known match: stream MsgApps optimistically, limited by the inflight window. */
  Replicate = 1,
  /** Follower needs a snapshot; nothing else is sent until it reports back. */
  Snapshot = 2,
}

export class Progress {
  match: number;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** Index of the snapshot being sent while in Snapshot state. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round (or newly added). */
  recentActive: boolean;
  /** In Probe: an append was sent and no answer came yet, so stay quiet. */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, match: number, inflights: Inflights, isLearner: boolean, recentActive: boolean) {
    this.next = next;
    this.match = match;
    this.inflights = inflights;
    this.isLearner = isLearner;
    this.recentActive = recentActive;
  }

  /** A copy for a config change under construction; the inflight window is shared as in etcd. */
  clone(): Progress {
    const p = new Progress(this.next, this.match, this.inflights, this.isLearner, this.recentActive);
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.probeSent = this.probeSent;
    return p;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least the snapshot: probe from there.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an ack up to n; false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < n + 1) this.next = n + 1;
    return updated;
  }

  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * Handles a rejection of the MsgApp at `rejected`; `last` is the follower's last index.
   * Returns false when the rejection is stale (out of order).
   */
  maybeDecrTo(rejected: number, last: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    // Jump straight to the follower's last index rather than stepping back one by one.
    this.next = Math.max(1, Math.min(rejected, last + 1));
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      default:
        return true;
    }
  }

  toString(): string {
    let s = `${ProgressState[this.state]} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += " learner";
    if (this.isPaused()) s += " paused";
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += " inactive";
    if (this.inflights.len() > 0) s += ` inflight=${this.inflights.len()}`;
    return s;
  }
}
