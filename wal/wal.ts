// The write-ahead log (etcd's wal package): raft's hard state, entries and snapshot
// markers appended to segment files `%016x-%016x.wal` (sequence, index of the first entry
// the segment may hold) in one directory. Records chain a rolling CRC-32C across segments.
//
// Lifecycle: create() once per member, or open() at the snapshot the member restarts from
// and then readAll() before anything is appended. Mutating calls run one at a time in call
// order; the first failure makes the WAL refuse all further work (fail-stop), because after
// a failed write nobody knows what reached the disk.

import { dirname, join } from "node:path";
import { emptyHardState, type Entry, type HardState, isEmptyHardState } from "../raft/types.ts";
import { ERR_EXISTS, ERR_FILE_NOT_FOUND, ERR_SNAPSHOT_NOT_FOUND, WalError } from "./errors.ts";
import { FilePipeline } from "./file_pipeline.ts";
import { openLocked } from "./file_lock.ts";
import { fsyncDir, listSuffix, pathExists, writeAll, writeAllSync } from "./fs_util.ts";
import { readSegment, zerosFollowFrom } from "./segment_reader.ts";
import type { WalLogger } from "./logger.ts";
import { parseWalName, WAL_SUFFIX, walName } from "./names.ts";
import { decodeHardState } from "./raft_codec.ts";
import { END, RecordDecoder, TORN } from "./record_decoder.ts";
import { RecordEncoder } from "./record_encoder.ts";
import { COLUMN_START, doubled, type EntryVisitor, ReplayColumns } from "./replay_columns.ts";
import { decodeWalSnapshot, RecordType, type WalSnapshot } from "./walpb.ts";

export type { WalSnapshot } from "./walpb.ts";
export type { WalLogger } from "./logger.ts";
export type { EntryVisitor } from "./replay_columns.ts";

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * A batch is written in pieces of about this size, so that its buffer never grows past it (a restarted member's
 * catch-up saved 13k entries, 4.2 MB, at once: 10 MB of new buffer pages, ~30 ms of page faults here); still one
 * fdatasync for the whole batch.
 */
const WRITE_PIECE_BYTES = 1024 * 1024;
// etcd warns about an fdatasync slower than this: the disk is too slow for raft timing.
const SLOW_SYNC_MS = 1000;

export interface WalOptions {
  /** Size at which the tail segment is cut and the next one begins (default 64 MiB). */
  segmentBytes?: number;
  logger?: WalLogger;
  /** Skip fdatasync (etcd's --unsafe-no-fsync): only for tests and benchmarks. */
  unsafeNoSync?: boolean;
  /** Called after every fdatasync with its duration (etcd's wal_fsync_duration_seconds). */
  onFsync?: (seconds: number) => void;
}

export interface ReadAllResult {
  metadata: Uint8Array;
  hardState: HardState;
  /** Entries after `prev`, contiguous. */
  entries: Entry[];
  /** The entry the first returned follows: the snapshot the WAL was opened at, unless readAll was told a later one. */
  prev: WalSnapshot;
}

interface Segment {
  name: string;
  seq: number;
  index: number;
  file: Deno.FsFile;
}

/** A segment as one decoding pass found it (WAL.scan), which readAll replays without decoding it again. */
interface ScannedSegment {
  /** The file's size when it was read: a segment that changed since is read again. */
  size: number;
  /**
   * Its records as columns over its bytes: record k has type `types[k]` and data `data.subarray(starts[k], ends[k])`
   * (no object or view per record is kept until readAll replays them). `data` stops where its records do (the first
   * zero frame): readAll checks that only zeros follow.
   */
  data: Uint8Array;
  types: Uint8Array;
  starts: Uint32Array;
  ends: Uint32Array;
  /** Where its last whole record ends, and the rolling CRC there. */
  end: number;
  crc: number;
  /** Why it ended before its end (a torn tail), if it did. */
  torn: string | undefined;
}

/** Every segment of a WAL, decoded and checked once: its valid snapshot markers, and what open() may replay. */
export interface WalScan {
  dir: string;
  /** The snapshot markers safe to restore from (index <= the committed index), oldest first. */
  snapshots: WalSnapshot[];
  segments: Map<string, ScannedSegment>;
}

const consoleLogger: WalLogger = (level, msg, fields) => console.error(JSON.stringify({ level, msg, ...fields }));

const EMPTY: Uint8Array = new Uint8Array(0);

export class WAL {
  private readonly segmentBytes: number;
  private readonly log: WalLogger;
  private readonly noSync: boolean;
  private readonly onFsync: (seconds: number) => void;
  /** Set from open() until readAll() consumes it; writing is allowed only after. */
  private start: WalSnapshot | null;
  private encoder: RecordEncoder | null = null;
  private pipeline: FilePipeline | null = null;
  private metadata: Uint8Array = EMPTY;
  private state = emptyHardState();
  /** Index of the last entry (or snapshot) saved. */
  private enti = 0;
  /** Write offset in the tail segment. */
  private tailOff = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: unknown = null;
  private closed = false;
  /** The segments WAL.scan read, for readAll to replay; dropped once it has. */
  private scanned: Map<string, ScannedSegment> | undefined;

  private constructor(
    readonly dir: string,
    opts: WalOptions,
    /** Segments this WAL holds locks on, oldest first; the last is the tail. */
    private locks: Segment[],
    start: WalSnapshot | null,
  ) {
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!(Number.isInteger(this.segmentBytes) && this.segmentBytes > 0)) {
      throw new Error(`wal: bad segmentBytes ${this.segmentBytes}`);
    }
    this.log = opts.logger ?? consoleLogger;
    this.noSync = opts.unsafeNoSync ?? false;
    this.onFsync = opts.onFsync ?? (() => {});
    this.start = start;
  }

  /** Whether `dir` holds any WAL segment. */
  static async exists(dir: string): Promise<boolean> {
    if (!(await pathExists(dir))) return false;
    return (await segmentNames(dir)).length > 0;
  }

  /**
   * Creates a WAL whose every segment starts with `metadata`. Built in `<dir>.tmp` and
   * renamed into place, so a crash never leaves a half-made WAL at `dir`.
   */
  static async create(dir: string, metadata: Uint8Array, opts: WalOptions = {}): Promise<WAL> {
    if (await WAL.exists(dir)) throw new WalError(`${ERR_EXISTS}: ${dir}`);
    const tmp = dir.replace(/\/+$/, "") + ".tmp";
    if (await pathExists(tmp)) await Deno.remove(tmp, { recursive: true });
    await Deno.mkdir(tmp, { recursive: true, mode: 0o700 });
    const name = walName(0, 0);
    const file = await openLocked(join(tmp, name), tmp, true);
    const w = new WAL(dir, opts, [{ name, seq: 0, index: 0, file }], null);
    try {
      await file.truncate(w.segmentBytes);
      const enc = new RecordEncoder(0);
      enc.crcRecord();
      enc.metadata(metadata);
      enc.snapshot({ index: 0, term: 0 });
      const bytes = enc.take();
      await writeAll(file, bytes);
      await file.syncData();
      // Only an empty directory may be replaced; anything else is not ours to delete.
      if (await pathExists(dir)) await Deno.remove(dir);
      await Deno.rename(tmp, dir);
      await fsyncDir(dirname(dir));
      w.encoder = enc;
      w.tailOff = bytes.length;
      w.metadata = metadata;
      w.pipeline = new FilePipeline(dir, w.segmentBytes);
      return w;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Opens the WAL for appending, positioned to replay from `snap` (the snapshot the member
   * restores; {0, 0} without one). Locks every segment from the one holding `snap` on, so
   * a second process fails here. Call readAll() next.
   */
  static async open(dir: string, snap: WalSnapshot, opts: WalOptions = {}, scan?: WalScan): Promise<WAL> {
    const names = await segmentNames(dir);
    const i = searchIndex(names, snap.index);
    if (i < 0 || !isValidSeq(names.slice(i))) {
      throw new WalError(`${ERR_FILE_NOT_FOUND}: ${dir} at index ${snap.index}`);
    }
    const locks: Segment[] = [];
    try {
      for (const name of names.slice(i)) {
        const file = await openLocked(join(dir, name), dir);
        const [seq, index] = parseWalName(name)!;
        locks.push({ name, seq, index, file });
      }
    } catch (e) {
      for (const s of locks) s.file.close();
      throw e;
    }
    const wal = new WAL(dir, opts, locks, snap);
    if (scan?.dir === dir) wal.scanned = scan.segments;
    return wal;
  }

  /**
   * The snapshot markers in the WAL that are safe to restore from (index <= the committed
   * index), oldest first: what Snapshotter.loadNewestAvailable() chooses among. Reads
   * without locking and without repairing anything.
   */
  static async validSnapshotEntries(dir: string): Promise<WalSnapshot[]> {
    return (await WAL.scan(dir)).snapshots;
  }

  /**
   * Reads and checks every segment once (without locking or repairing anything): the valid snapshot markers to
   * choose a snapshot among, and the records, which open() given this scan replays in readAll() instead of reading
   * and decoding its segments a second time (a restart with 40 MB of WAL spent ~80 ms on that pass).
   */
  static async scan(dir: string): Promise<WalScan> {
    const names = await segmentNames(dir);
    if (names.length === 0) throw new WalError(`${ERR_FILE_NOT_FOUND}: ${dir}`);
    const snaps: WalSnapshot[] = [];
    const segments = new Map<string, ScannedSegment>();
    let commit = 0;
    const dec = new RecordDecoder();
    for (let i = 0; i < names.length; i++) {
      const file = await Deno.open(join(dir, names[i]), { read: true });
      let seg: { data: Uint8Array; size: number };
      try {
        // the first zero frame ends the records: whether only zeros follow it is readAll's call
        seg = await readSegment(join(dir, names[i]), file, false);
      } finally {
        file.close();
      }
      dec.load(names[i], seg.data, i === names.length - 1);
      let types = new Uint8Array(COLUMN_START),
        starts = new Uint32Array(COLUMN_START),
        ends = new Uint32Array(COLUMN_START);
      let n = 0;
      let torn: string | undefined;
      for (let r = dec.next(); r !== END; r = dec.next()) {
        if (r === TORN) {
          torn = dec.tornReason;
          break;
        }
        const rec = dec.rec;
        if (n === types.length) [types, starts, ends] = [doubled(types), doubled(starts), doubled(ends)];
        types[n] = rec.type;
        starts[n] = rec.dataStart;
        ends[n] = rec.dataEnd;
        n++;
        if (rec.type === RecordType.Snapshot) snaps.push(decodeWalSnapshot(dec.data()));
        else if (rec.type === RecordType.State) commit = decodeHardState(dec.data()).commit;
      }
      segments.set(names[i], {
        size: seg.size,
        data: seg.data,
        types: types.subarray(0, n),
        starts: starts.subarray(0, n),
        ends: ends.subarray(0, n),
        end: dec.lastValidOff,
        crc: dec.crc,
        torn,
      });
    }
    const snapshots = snaps.filter((s) => s.index <= commit);
    // a restart replays from the newest snapshot (from an older one only when the newest's file is missing, and then
    // reads the segments before again): the records of the segments before its own are not kept
    const from = snapshots.length === 0 ? 0 : Math.max(0, searchIndex(names, snapshots[snapshots.length - 1].index));
    for (const name of names.slice(0, from)) segments.delete(name);
    return { dir, snapshots, segments };
  }

  /**
   * Replays the log from the snapshot given to open(): the metadata, the last hard state,
   * and the entries after the snapshot, where a later entry replaces every earlier one at
   * its index and after (raft overwrote a conflicting suffix). A torn tail — the partial
   * last write of a crash — is cut off and logged; corruption anywhere else throws. `visit` sees every entry while its
   * bytes are still mapped; `after`, asked once the hard state and the last index are known and every entry visited, leaves
   * out the entries up to the index it gives (see ReplayColumns.entries).
   */
  readAll(visit?: EntryVisitor, after?: (hardState: HardState, last: number) => number): Promise<ReadAllResult> {
    return this.serial(async () => {
      const start = this.start;
      if (start === null) throw new Error("wal: readAll() only once, after open()");
      const dec = new RecordDecoder();
      // as many as the scan found records, when there was one
      let records = 0;
      for (const seg of this.scanned?.values() ?? []) records += seg.types.length;
      const replay = new ReplayColumns(start, records);
      // segment i's bytes, what the entries' data are views of
      const segments: Uint8Array[] = [];
      let tailSize = 0;
      let torn = false;
      let tornReason = "";
      for (let i = 0; i < this.locks.length; i++) {
        const seg = this.locks[i];
        const known = this.scanned?.get(seg.name);
        if (
          known !== undefined && known.size === (await seg.file.stat()).size &&
          await zerosFollowFrom(seg.file, known.data.length)
        ) {
          const { data, types, starts, ends } = known;
          segments.push(data);
          for (let k = 0; k < types.length; k++) replay.record(types[k], i, data, starts[k], ends[k]);
          tailSize = known.size;
          this.tailOff = known.end;
          dec.crc = known.crc;
          if (known.torn !== undefined) {
            torn = true;
            tornReason = known.torn;
          }
          continue;
        }
        // read again: so are the segments after it, the CRC chain checked on from here
        this.scanned = undefined;
        const { data: buf, size } = await readSegment(join(this.dir, seg.name), seg.file);
        dec.load(seg.name, buf, i === this.locks.length - 1);
        segments.push(buf);
        tailSize = size;
        for (let r = dec.next(); r !== END; r = dec.next()) {
          if (r === TORN) {
            torn = true;
            tornReason = dec.tornReason;
            break;
          }
          replay.record(dec.rec.type, i, buf, dec.rec.dataStart, dec.rec.dataEnd);
        }
        this.tailOff = dec.lastValidOff;
      }
      this.scanned = undefined;
      if (!replay.match) throw new WalError(`${ERR_SNAPSHOT_NOT_FOUND}: index ${start.index} term ${start.term}`);

      const tail = this.tail();
      if (torn) {
        this.log("warn", "wal: repaired torn tail", {
          segment: tail.name,
          offset: this.tailOff,
          droppedBytes: tailSize - this.tailOff,
          reason: tornReason,
        });
      }
      // Zero everything past the last good record, so stale bytes there can never be read as records once new ones are
      // written in front of them. Past an untorn tail there are only zeros (checked above): nothing to change or sync
      // (a clean restart spent ~50 ms on that truncate and fsync).
      if (torn) {
        await tail.file.truncate(this.tailOff);
        await tail.file.truncate(Math.max(tailSize, this.tailOff));
        await this.syncTail();
      }
      await tail.file.seek(this.tailOff, Deno.SeekMode.Start);

      this.start = null;
      this.metadata = replay.metadata ?? EMPTY;
      this.state = replay.state;
      this.enti = replay.enti;
      this.encoder = new RecordEncoder(dec.crc);
      this.pipeline = new FilePipeline(this.dir, this.segmentBytes);
      const hardState = { ...this.state };
      let prev: WalSnapshot = { index: replay.start.index, term: replay.start.term };
      const entries = replay.entries(
        segments,
        visit,
        after && (() => {
          const index = after(hardState, replay.lastIndex);
          prev = { index, term: replay.termOf(index) };
          return index;
        }),
      );
      return { metadata: this.metadata, hardState, entries, prev };
    });
  }

  /**
   * Appends a Ready's entries and hard state with ONE write and at most ONE fdatasync:
   * the group commit for every proposal batched into that Ready. Syncs only when raft
   * needs it (etcd's MustSync: new entries, or a term or vote change).
   */
  save(hs: HardState, entries: Entry[]): Promise<void> {
    return this.serial(async () => {
      const enc = this.writable();
      if (isEmptyHardState(hs) && entries.length === 0) return;
      const mustSync = entries.length !== 0 || hs.vote !== this.state.vote || hs.term !== this.state.term;
      // checked before a piece is written: a batch refused leaves nothing of it behind
      for (let i = 1; i < entries.length; i++) {
        if (entries[i].index !== entries[i - 1].index + 1) {
          throw new Error(`wal: entries not contiguous at ${entries[i].index}`);
        }
      }
      for (const e of entries) {
        enc.entry(e);
        if (enc.pending >= WRITE_PIECE_BYTES) this.writeTail(enc.take());
      }
      if (entries.length !== 0) this.enti = entries[entries.length - 1].index;
      if (!isEmptyHardState(hs)) {
        enc.state(hs);
        this.state = { term: hs.term, vote: hs.vote, commit: hs.commit };
      }
      this.writeTail(enc.take());
      if (this.tailOff >= this.segmentBytes) await this.cut();
      else if (mustSync) await this.syncTail();
    });
  }

  private writeTail(bytes: Uint8Array): void {
    writeAllSync(this.tail().file, bytes);
    this.tailOff += bytes.length;
  }

  /** Records that a snapshot at `snap` exists, so open() can start from it; synced. */
  saveSnapshot(snap: WalSnapshot): Promise<void> {
    return this.serial(async () => {
      const enc = this.writable();
      enc.snapshot(snap);
      const bytes = enc.take();
      await writeAll(this.tail().file, bytes);
      this.tailOff += bytes.length;
      if (this.enti < snap.index) this.enti = snap.index;
      await this.syncTail();
    });
  }

  /**
   * Releases the locks on segments that hold only entries before `index` (the last
   * snapshot), keeping the one that contains it, so purge() may remove the older ones.
   */
  releaseLockTo(index: number): Promise<void> {
    return this.serial(() => {
      let keepFrom = this.locks.length - 1;
      for (let i = 0; i < this.locks.length; i++) {
        if (this.locks[i].index >= index) {
          keepFrom = i - 1;
          break;
        }
      }
      if (keepFrom <= 0) return Promise.resolve();
      for (const s of this.locks.slice(0, keepFrom)) s.file.close();
      this.locks = this.locks.slice(keepFrom);
      return Promise.resolve();
    });
  }

  /** Syncs the tail, drops the prepared segment and releases every lock. */
  close(): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      try {
        await this.pipeline?.close();
        if (this.encoder !== null && this.failure === null) await this.syncTail();
      } finally {
        for (const s of this.locks) s.file.close();
        this.locks = [];
      }
    }, true);
  }

  /**
   * Runs `op` after every earlier call; a failure poisons the WAL for everything but
   * close(), which must still release the locks.
   */
  private serial<T>(op: () => Promise<T>, isClose = false): Promise<T> {
    const run = async (): Promise<T> => {
      if (!isClose) {
        if (this.failure !== null) throw new WalError(`wal: unusable after an earlier failure: ${this.failure}`);
        if (this.closed) throw new WalError("wal: closed");
      }
      try {
        return await op();
      } catch (e) {
        this.failure = e;
        throw e;
      }
    };
    const p = this.queue.then(run);
    this.queue = p.catch(() => {});
    return p;
  }

  private writable(): RecordEncoder {
    if (this.encoder === null) throw new Error("wal: call readAll() before writing");
    if (this.encoder.pending !== 0) throw new Error("wal: encoder holds bytes of an unfinished write");
    return this.encoder;
  }

  private tail(): Segment {
    const t = this.locks[this.locks.length - 1];
    if (t === undefined) throw new Error("wal: no tail segment");
    return t;
  }

  private async syncTail(): Promise<void> {
    if (this.noSync) return;
    const t0 = performance.now();
    await this.tail().file.syncData();
    const took = performance.now() - t0;
    this.onFsync(took / 1000);
    if (took > SLOW_SYNC_MS) this.log("warn", "wal: slow fdatasync", { tookMs: Math.round(took) });
  }

  /**
   * Seals the full tail (drops its unused preallocation, syncs) and continues in the
   * prepared file: chain CRC, metadata and hard state first, so each segment stands alone
   * from its head, then renamed to its final name and the directory synced.
   */
  private async cut(): Promise<void> {
    const enc = this.writable();
    const old = this.tail();
    await old.file.truncate(this.tailOff);
    await this.syncTail();
    const next = await this.pipeline!.take();
    const seq = old.seq + 1;
    const index = this.enti + 1;
    const name = walName(seq, index);
    enc.crcRecord();
    enc.metadata(this.metadata);
    if (!isEmptyHardState(this.state)) enc.state(this.state);
    const bytes = enc.take();
    await writeAll(next.file, bytes);
    await next.file.syncData();
    await Deno.rename(next.path, join(this.dir, name));
    await fsyncDir(this.dir);
    this.locks.push({ name, seq, index, file: next.file });
    this.tailOff = bytes.length;
    this.log("info", "wal: created a new segment", { segment: name });
  }
}

async function segmentNames(dir: string): Promise<string[]> {
  return (await listSuffix(dir, WAL_SUFFIX)).filter((n) => parseWalName(n) !== null);
}

/** The last segment whose first index is at or before `index`, or -1. */
function searchIndex(names: string[], index: number): number {
  for (let i = names.length - 1; i >= 0; i--) if (index >= parseWalName(names[i])![1]) return i;
  return -1;
}

/** Whether the segments' sequence numbers run without holes. */
function isValidSeq(names: string[]): boolean {
  for (let i = 1; i < names.length; i++) {
    if (parseWalName(names[i])![0] !== parseWalName(names[i - 1])![0] + 1) return false;
  }
  return names.length > 0;
}
