// Stable storage as seen by raft, plus an in-memory implementation.

import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";
import { emptyHardState } from "./types.ts";
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from "./errors.ts";
import { emptySnapshot, limitedEnd } from "./util.ts";

/**
 * The application's persisted log. Methods throw ErrCompacted, ErrUnavailable or
 * ErrSnapshotTemporarilyUnavailable; any other error is fatal to raft.
 */
export interface Storage {
  /** The saved HardState and ConfState (from the latest snapshot plus applied conf changes). */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), cut to maxSize bytes but always at least one if any exist. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i; i may be firstIndex()-1, the snapshot's index. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  snapshot(): Snapshot;
}

/**
 * Storage backed by an array. ents[0] is a dummy holding the snapshot's index
 * and term so term(firstIndex-1) works without a special case.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  private ents: Entry[] = [{ term: 0, index: 0, type: 0, data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  /** Sets the membership of a fresh storage, an alternative to RawNode.bootstrap. */
  setConfState(cs: ConfState): void {
    this.snap = { data: this.snap.data, metadata: { ...this.snap.metadata, confState: cloneConfState(cs) } };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw ErrCompacted;
    if (hi > this.lastIndex() + 1) throw new Error(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    // Only the dummy entry left: nothing to return.
    if (this.ents.length === 1) throw ErrUnavailable;
    const from = lo - offset;
    return this.ents.slice(from, limitedEnd(this.ents, from, hi - offset, maxSize));
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw ErrCompacted;
    if (i - offset >= this.ents.length) throw ErrUnavailable;
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces everything with the snapshot (a follower installing one from its leader). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw ErrSnapOutOfDate;
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: 0, data: new Uint8Array(0) }];
  }

  /** Records a snapshot of the applied state at index i (<= applied) for later compaction. */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw ErrSnapOutOfDate;
    const offset = this.ents[0].index;
    if (i > this.lastIndex()) throw new Error(`snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    const confState = cs ? cloneConfState(cs) : this.snap.metadata.confState;
    this.snap = { data, metadata: { index: i, term: this.ents[i - offset].term, confState } };
    return this.snap;
  }

  /** Discards entries before compactIndex; the application must not compact past applied. */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw ErrCompacted;
    if (compactIndex > this.lastIndex()) {
      throw new Error(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const rest = this.ents.slice(i);
    rest[0] = { term: rest[0].term, index: rest[0].index, type: 0, data: new Uint8Array(0) };
    this.ents = rest;
  }

  /** Appends entries, truncating any conflicting suffix; entries below firstIndex are ignored. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    if (offset > this.ents.length) {
      throw new Error(`missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
    }
    if (offset < this.ents.length) this.ents.length = offset;
    for (let k = 0; k < entries.length; k++) this.ents.push(entries[k]);
  }
}

export function cloneConfState(cs: ConfState): ConfState {
  return {
    voters: cs.voters.slice(),
    learners: cs.learners.slice(),
    votersOutgoing: cs.votersOutgoing.slice(),
    learnersNext: cs.learnersNext.slice(),
    autoLeave: cs.autoLeave,
  };
}
