/**
 * The storage backend: named buckets of ordered byte keys held in memory, persisted through an append-only log
 * (see backend_log.ts). Like etcd's batchTx, writes apply to memory at once and are committed to disk in batches
 * every `batchInterval` ms or `batchLimit` ops, whichever comes first, or on forceCommit()/close().
 *
 * A bucket can be detached (see detach()): it is then only written to the log, and its owner supplies its content
 * for hash() and defrag(), so data the owner holds anyway in another form is not kept twice.
 *
 * Reads and writes are synchronous; only commits are asynchronous. A commit never splits a synchronous run of
 * writes: it is started from a timer or a microtask, so everything written inside one synchronous call (a store
 * transaction together with its consistent index) lands in the same record.
 */
import { arrayBucket, type BoltBucket, BoltImage } from "./bolt_image.ts";
import { type BoltImport, importBolt } from "./bolt_import.ts";
import { BTree } from "./btree.ts";
import { failpoint } from "./failpoints.ts";
import { latin1 } from "./bytes.ts";
import { crc32cUpdate } from "../wal/crc32c.ts";
import { fsyncDir, writeAll } from "../wal/fs_util.ts";
import { MAGIC, OP_CREATE_BUCKET, OP_DROP_BUCKET, type OpSink, RecordWriter, replayLog } from "./backend_log.ts";
import { ReplayedRevisions } from "./replayed_revisions.ts";

/** Bucket names used by etcd. */
export const BUCKET = {
  key: "key",
  meta: "meta",
  lease: "lease",
  members: "members",
  membersRemoved: "members_removed",
  cluster: "cluster",
  alarm: "alarm",
  auth: "auth",
  authUsers: "authUsers",
  authRoles: "authRoles",
} as const;

export interface BackendOptions {
  /** Max time in ms that writes stay uncommitted (etcd default 100 ms). */
  batchInterval?: number;
  /** Number of buffered ops that triggers a commit (etcd default 10000). */
  batchLimit?: number;
  /**
   * The log is rewritten (defrag) once it is larger than this many bytes and more than twice the live data, so
   * overwritten and deleted entries do not accumulate forever. Default 64 MiB; 0 disables.
   */
  autoDefragMinBytes?: number;
  /** Gets the duration of every commit, write and fdatasync (etcd_disk_backend_commit_duration_seconds). */
  onCommit?: (seconds: number) => void;
  /** Called once when a commit fails: the backend refuses everything after, and its owner must stop. */
  onFailure?: (e: Error) => void;
  /** Told when the file was etcd's bbolt backend, rewritten as a log on open (see importBolt). */
  onBoltImport?: (i: BoltImport) => void;
}

/** The content of a detached bucket, kept by its owner. */
export interface BucketSource {
  /** Visits every entry in key order, exactly as put and not yet deleted. */
  forEach(fn: (key: Uint8Array, value: Uint8Array) => void): void;
  /** The entries as they are now, for a bbolt file; without it, forEach's are taken. */
  boltBucket?(name: Uint8Array): BoltBucket;
}

/** Bytes a live entry accounts for in sizeInUse(): its encoding in a compacted log. */
function entryCost(bucket: string, keyLen: number, valueLen: number): number {
  return 2 + bucket.length + uvarintLen(keyLen) + keyLen + uvarintLen(valueLen) + valueLen;
}

const BOLT_PAGE = 4096;
/** An empty etcd bbolt file: two meta pages, the freelist, the root leaf holding the buckets. */
const BOLT_BASE = 4 * BOLT_PAGE;

/**
 * Net growth of a bbolt file per page an oversized entry allocates: pages freed by copy-on-write (branches, the
 * freelist) are reused for some of them. Measured: etcd 3.4.23 with --quota-backend-bytes=300000 takes 39-41 puts
 * of 4 KiB values (two pages each) before NOSPACE.
 */
const BOLT_OVERFLOW_GROWTH = 0.85;

/**
 * Bytes etcd's bbolt gives an entry: a leaf element (16-byte header, key, value) packed into 4 KiB pages filled as
 * etcd fills them (the key bucket's sequential puts to 90%, others to bbolt's default 50%), or, when it does not
 * fit a page, pages of its own.
 */
function boltCost(bucket: string, keyLen: number, valueLen: number): number {
  const element = 16 + keyLen + valueLen;
  if (element + 16 > BOLT_PAGE) {
    return Math.ceil(Math.ceil((element + 16) / BOLT_PAGE) * BOLT_PAGE * BOLT_OVERFLOW_GROWTH);
  }
  return Math.ceil(element / (bucket === BUCKET.key ? 0.9 : 0.5));
}

/** What the live entries add up to: their bytes in a compacted log, and the pages etcd's bbolt would give them. */
class LiveSize {
  log = 0;
  bolt = 0;

  add(bucket: string, keyLen: number, valueLen: number, sign = 1): void {
    this.log += sign * entryCost(bucket, keyLen, valueLen);
    this.bolt += sign * boltCost(bucket, keyLen, valueLen);
  }
}

function uvarintLen(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

const DEFRAG_RECORD_BYTES = 4 * 1024 * 1024;
/**
 * A batch's record is built in a buffer this large from the start, reused while it stays so: the OS gives its pages as
 * they are written, and a batch of 10000 ~350-byte puts (etcd's batch limit) never regrows it. A fresh process's first
 * big batches used to regrow one from 64 KB, copying and faulting in ~8 MB: 57 -> 33 ms for three such batches.
 */
const BATCH_BUFFER_BYTES = 4 * 1024 * 1024;

export class Backend {
  readonly path: string;
  readonly batchInterval: number;
  readonly batchLimit: number;
  readonly autoDefragMinBytes: number;

  #buckets = new Map<string, BucketContent>();
  #detached = new Map<string, BucketSource>();
  #file: Deno.FsFile;
  /** Committed bytes of the log (0 until load()). */
  #fileSize = 0;
  #live = new LiveSize();
  /** bbolt's size never shrinks but by a defrag: the most its pages have come to (see dbSize). */
  #boltHighWater = 0;
  #pending = new RecordWriter(BATCH_BUFFER_BYTES);
  #spare: RecordWriter | null = new RecordWriter(BATCH_BUFFER_BYTES);
  #timer: ReturnType<typeof setTimeout> | undefined;
  #microtaskQueued = false;
  #beforeCommit: () => void = () => {};
  /** Set while #beforeCommit runs: its writes go into the commit being made, so they schedule none. */
  #inBeforeCommit = false;
  #commitChain: Promise<void> = Promise.resolve();
  #failed: Error | null = null;
  #closed = false;
  #loaded = false;
  readonly #onCommit: (seconds: number) => void;
  readonly #onFailure: (e: Error) => void;

  private constructor(path: string, file: Deno.FsFile, opts: BackendOptions) {
    this.path = path;
    this.#file = file;
    this.batchInterval = opts.batchInterval ?? 100;
    this.batchLimit = opts.batchLimit ?? 10000;
    this.autoDefragMinBytes = opts.autoDefragMinBytes ?? 64 * 1024 * 1024;
    this.#onCommit = opts.onCommit ?? (() => {});
    this.#onFailure = opts.onFailure ?? (() => {});
  }

  /** Opens `<dataDir>/member/snap/db`, etcd's location for the backend file. */
  static openDataDir(dataDir: string, opts: BackendOptions = {}): Promise<Backend> {
    return Backend.open(`${dataDir}/member/snap/db`, opts);
  }

  /**
   * Opens (creating if needed) the log at `path` and replays it (see load()). The standard etcd buckets always exist.
   */
  static async open(path: string, opts: BackendOptions = {}): Promise<Backend> {
    const b = await Backend.openUnloaded(path, opts);
    try {
      await b.load();
    } catch (e) {
      await b.close();
      throw e;
    }
    return b;
  }

  /**
   * Opens (creating if needed) the log at `path` without reading it: until load(), the backend is empty (its standard
   * buckets exist) and refuses writes. A restarting member opens it so, to replay it while raft already runs: a
   * leader's snapshot that arrives meanwhile makes the replay needless.
   */
  static async openUnloaded(path: string, opts: BackendOptions = {}): Promise<Backend> {
    const dir = parentDir(path);
    await Deno.mkdir(dir, { recursive: true });
    const imported = await importBolt(path);
    if (imported !== undefined) opts.onBoltImport?.(imported);
    const file = await Deno.open(path, { read: true, write: true, create: true });
    const b = new Backend(path, file, opts);
    for (const name of Object.values(BUCKET)) b.#buckets.set(name, new BTree());
    return b;
  }

  /**
   * Replays the log into memory, once. A torn final record is truncated away; damage before the end throws
   * CorruptLogError. `beforeRead` is called before each read of the file (every 4 MiB): a promise it returns holds
   * the replay, an error it throws ends it, the backend left unloaded and the file untouched. Buckets detached before
   * are attached again: their owners restore from the replayed content.
   */
  async load(beforeRead?: () => void | Promise<void>): Promise<void> {
    if (this.#loaded) throw new Error("backend: already loaded");
    const file = this.#file;
    const total = (await file.stat()).size;
    const sink = new ReplaySink();
    let end = await replayLog(this.path, file, total, sink, beforeRead);
    if (end === 0) {
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await writeAll(file, MAGIC);
      await file.syncData();
      await fsyncDir(parentDir(this.path));
      end = MAGIC.length;
    } else if (end < total) {
      await file.truncate(end);
      await file.syncData();
    }
    await file.seek(end, Deno.SeekMode.Start);
    this.#fileSize = end;
    this.#buckets = sink.buckets;
    this.#detached = new Map();
    this.#live = sink.live;
    this.#boltHighWater = BOLT_BASE + sink.live.bolt;
    this.#loaded = true;
    for (const name of Object.values(BUCKET)) this.createBucket(name);
  }

  /** Whether load() has replayed the log. */
  get loaded(): boolean {
    return this.#loaded;
  }

  createBucket(name: string): void {
    if (this.hasBucket(name)) return;
    this.#writable();
    this.#buckets.set(name, new BTree());
    this.#pending.bucketOp(OP_CREATE_BUCKET, name);
    this.#wrote();
  }

  dropBucket(name: string): void {
    if (this.#detached.has(name)) throw new Error(`backend: bucket ${name} is detached`);
    if (!this.#buckets.has(name)) return;
    this.#writable();
    this.#bucket(name).forEach((k, v) => this.#live.add(name, k.length, v.length, -1));
    this.#buckets.delete(name);
    this.#pending.bucketOp(OP_DROP_BUCKET, name);
    this.#wrote();
  }

  hasBucket(name: string): boolean {
    return this.#buckets.has(name) || this.#detached.has(name);
  }

  /**
   * Stops keeping bucket `name` in memory and returns its replayed content (the "key" bucket's as revisions, when its
   * replay kept it so: see forEachRevision). From now on `source` supplies the content, and the owner must put each
   * key only once and pass the stored value's length when deleting it.
   */
  detach(name: string, source: BucketSource): BucketContent {
    const t = this.#buckets.get(name);
    if (t === undefined) this.#bucket(name); // throws what a missing or detached bucket gets
    this.#buckets.delete(name);
    this.#detached.set(name, source);
    return t!;
  }

  /**
   * Stores value under key. An attached bucket keeps both arrays (callers must not mutate them afterwards); a
   * detached one only writes them to the log, and its owner gives the length of the value it replaces, if any.
   */
  put(bucket: string, key: Uint8Array, value: Uint8Array, replacedLength = -1): void {
    this.#writable();
    if (!this.#detached.has(bucket)) {
      const old = this.#bucket(bucket).set(key, value);
      if (old !== undefined) this.#live.add(bucket, key.length, old.length, -1);
    } else if (replacedLength >= 0) {
      this.#live.add(bucket, key.length, replacedLength, -1);
    }
    this.#live.add(bucket, key.length, value.length);
    this.#pending.put(bucket, key, value);
    this.#wrote();
  }

  /**
   * put() into a detached bucket with the value written straight into the log by `write` (see RecordWriter.putWith):
   * its owner keeps the value decoded, so no buffer is made for it. `key` is copied at once (a scratch may be reused).
   */
  putWith(
    bucket: string,
    key: Uint8Array,
    size: number,
    write: (buf: Uint8Array, pos: number) => number,
    replacedLength = -1,
  ): void {
    if (!this.#detached.has(bucket)) throw new Error(`backend: bucket ${bucket} is not detached`);
    this.#writable();
    this.#pending.putWith(bucket, key, size, write);
    if (replacedLength >= 0) this.#live.add(bucket, key.length, replacedLength, -1);
    this.#live.add(bucket, key.length, size);
    this.#wrote();
  }

  /**
   * Removes key; returns whether it existed. In a detached bucket the key must exist and `valueLength` be the
   * length of its value.
   */
  delete(bucket: string, key: Uint8Array, valueLength = 0): boolean {
    this.#writable();
    if (this.#detached.has(bucket)) {
      this.#live.add(bucket, key.length, valueLength, -1);
    } else {
      const old = this.#bucket(bucket).delete(key);
      if (old === undefined) return false;
      this.#live.add(bucket, key.length, old.length, -1);
    }
    this.#pending.delete(bucket, key);
    this.#wrote();
    return true;
  }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    return this.#bucket(bucket).get(key);
  }

  /**
   * Entries with start <= key < end in key order (end undefined: no upper bound), at most `limit` when limit > 0.
   */
  range(
    bucket: string,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit = 0,
  ): { keys: Uint8Array[]; values: Uint8Array[] } {
    const keys: Uint8Array[] = [];
    const values: Uint8Array[] = [];
    this.#bucket(bucket).range(start, end, (k, v) => {
      keys.push(k);
      values.push(v);
      return limit <= 0 || keys.length < limit;
    });
    return { keys, values };
  }

  /** Visits a bucket in key order; stops when fn returns false. Do not write to the bucket while visiting. */
  forEach(bucket: string, fn: (key: Uint8Array, value: Uint8Array) => boolean | void): void {
    this.#bucket(bucket).forEach(fn);
  }

  /** Number of entries in a bucket. */
  count(bucket: string): number {
    return this.#bucket(bucket).size;
  }

  /** Bytes of the log file that have been committed. */
  size(): number {
    return this.#fileSize;
  }

  /** Bytes the live data would take in a freshly defragmented file. */
  sizeInUse(): number {
    return MAGIC.length + this.#live.log;
  }

  /**
   * The database size etcd would report and hold against --quota-backend-bytes: the file, or what etcd's bbolt would
   * have grown to for the same data, whichever is larger (bbolt pages entries, so the same puts take etcd's quota
   * sooner than this log). Like bbolt's, it moves as transactions commit and shrinks only by a defrag.
   */
  dbSize(): number {
    return Math.max(this.#fileSize, this.#boltHighWater);
  }

  /** The part of dbSize() the live data takes (etcd: bbolt's size less its free pages). */
  dbSizeInUse(): number {
    if (this.#fileSize >= this.#boltHighWater) return Math.min(this.sizeInUse(), this.#fileSize);
    return Math.min(BOLT_BASE + this.#live.bolt, this.#boltHighWater);
  }

  /** Ops written but not yet handed to a commit. */
  get pendingOps(): number {
    return this.#pending.ops;
  }

  /**
   * CRC-32C over all buckets in name order, each as its name followed by its keys and values, skipping
   * `ignores` (bucket -> keys), like etcd's backend Hash.
   */
  hash(ignores: Map<string, Set<string>> = new Map()): number {
    let h = 0;
    const enc = new TextEncoder();
    for (const name of [...this.#buckets.keys(), ...this.#detached.keys()].sort()) {
      h = crc32cUpdate(h, enc.encode(name));
      const skip = ignores.get(name);
      this.#content(name).forEach((k, v) => {
        if (skip !== undefined && skip.has(latin1(k))) return;
        h = crc32cUpdate(h, k);
        h = crc32cUpdate(h, v);
      });
    }
    return h;
  }

  /**
   * fn runs right before each commit takes the pending writes (and before a defrag copies the data), so what it
   * writes lands in that commit (etcd's OnPreCommitUnsafe hook): the store saves its consistent index there once per
   * commit instead of once per transaction.
   */
  setBeforeCommit(fn: () => void): void {
    this.#beforeCommit = fn;
  }

  #runBeforeCommit(): void {
    this.#inBeforeCommit = true;
    try {
      this.#beforeCommit();
    } finally {
      this.#inBeforeCommit = false;
    }
  }

  /** Commits everything written so far; resolves once it is on disk. */
  forceCommit(): Promise<void> {
    this.#assertUsable();
    this.#cancelTimer();
    this.#commitChain = this.#commitChain.then(() => this.#commitPending());
    return this.#commitChain;
  }

  /**
   * The backend as a file to send a peer (etcd's backend.Snapshot): everything written so far is committed, and the
   * log's first `size` bytes are then a backend on their own. The file is opened anew: a later defrag renames another
   * file over the path, and this one keeps reading what it had. The caller closes it.
   */
  snapshotFile(): Promise<{ file: Deno.FsFile; size: number }> {
    this.#assertUsable();
    this.#cancelTimer();
    const taken = this.#commitChain.then(async () => {
      await this.#commitPending();
      return { file: await Deno.open(this.path, { read: true }), size: this.#fileSize };
    });
    // a failed commit has failed the backend already (every later commit throws); a failed open is the caller's
    this.#commitChain = taken.then(() => {}, () => {});
    return taken;
  }

  /**
   * Every bucket as it is now, as a bbolt file to stream to a client (etcd's backend.Snapshot for
   * Maintenance.Snapshot): the owner's pre-commit writes (the consistent index) are made first, and writes not yet committed are in it, as
   * etcd commits them before it reads. The entries are taken by reference; none is changed in place later.
   */
  boltImage(): BoltImage {
    this.#assertUsable();
    this.#runBeforeCommit();
    if (this.#pending.ops > 0) this.#wrote();
    const enc = new TextEncoder();
    return new BoltImage(
      [...this.#buckets.keys(), ...this.#detached.keys()].sort().map((name) => {
        const source = this.#content(name);
        if ("boltBucket" in source && source.boltBucket !== undefined) return source.boltBucket(enc.encode(name));
        const keys: Uint8Array[] = [], values: Uint8Array[] = [];
        source.forEach((k, v) => {
          keys.push(k);
          values.push(v);
        });
        return arrayBucket(enc.encode(name), keys, values);
      }),
    );
  }

  /**
   * Rewrites the file with only the live data (in bounded records), fsyncs it, renames it over the log and
   * fsyncs the directory, so a crash leaves either the old or the new file. Writes made meanwhile go to the new file.
   */
  defrag(): Promise<void> {
    this.#assertUsable();
    this.#cancelTimer();
    this.#commitChain = this.#commitChain.then(async () => {
      if (this.#failed) throw this.#failed;
      // Snapshot synchronously: the encoded records capture the state including not-yet-committed writes.
      this.#runBeforeCommit();
      const records = this.#snapshotRecords();
      this.#pending.reset();
      const tmp = `${this.path}.defrag`;
      const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
      let size = 0;
      try {
        await writeAll(f, MAGIC);
        size += MAGIC.length;
        for (const r of records) {
          await writeAll(f, r);
          size += r.length;
        }
        await f.syncData();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, this.path);
      await fsyncDir(parentDir(this.path));
      this.#file.close();
      this.#file = await Deno.open(this.path, { read: true, write: true });
      await this.#file.seek(size, Deno.SeekMode.Start);
      this.#fileSize = size;
      this.#boltHighWater = BOLT_BASE + this.#live.bolt;
    }).catch((e) => this.#fail(e));
    return this.#commitChain;
  }

  /** Commits pending writes and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#cancelTimer();
    this.#commitChain = this.#commitChain.then(() => this.#commitPending());
    try {
      await this.#commitChain;
    } finally {
      this.#closed = true;
      this.#file.close();
    }
  }

  #bucket(name: string): BTree<Uint8Array> {
    const b = this.#buckets.get(name);
    if (b === undefined) {
      throw new Error(`backend: bucket ${name} ${this.#detached.has(name) ? "is detached" : "does not exist"}`);
    }
    if (b instanceof BTree) return b;
    const t = b.toBTree();
    this.#buckets.set(name, t);
    return t;
  }

  #content(name: string): BucketSource {
    return this.#detached.get(name) ?? this.#bucket(name);
  }

  #assertUsable(): void {
    if (this.#closed) throw new Error("backend: closed");
    if (!this.#loaded) throw new Error("backend: not loaded");
    if (this.#failed) throw this.#failed;
  }

  /** Before a write changes anything. */
  #writable(): void {
    if (this.#closed) throw new Error("backend: write after close");
    if (!this.#loaded) throw new Error("backend: write before load");
  }

  #wrote(): void {
    if (this.#inBeforeCommit) return;
    if (this.#pending.ops >= this.batchLimit) {
      if (!this.#microtaskQueued) {
        this.#microtaskQueued = true;
        // A microtask runs only after the current synchronous transaction has finished.
        queueMicrotask(() => {
          this.#microtaskQueued = false;
          if (!this.#closed && this.#pending.ops >= this.batchLimit) this.forceCommit().catch(() => {});
        });
      }
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!this.#closed) this.forceCommit().catch(() => {});
      }, this.batchInterval);
    }
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  async #commitPending(): Promise<void> {
    if (this.#failed) throw this.#failed;
    this.#runBeforeCommit();
    if (this.#pending.ops === 0) return;
    const w = this.#pending;
    this.#pending = this.#spare ?? new RecordWriter(BATCH_BUFFER_BYTES);
    this.#spare = null;
    const record = w.seal();
    const t0 = performance.now();
    try {
      failpoint("backendBeforeCommit");
      await writeAll(this.#file, record);
      await this.#file.syncData();
    } catch (e) {
      this.#fail(e);
    }
    this.#onCommit((performance.now() - t0) / 1000);
    this.#fileSize += record.length;
    // as bbolt's size, it moves when a transaction commits
    this.#boltHighWater = Math.max(this.#boltHighWater, BOLT_BASE + this.#live.bolt);
    w.reset();
    if (w.buf.length <= BATCH_BUFFER_BYTES) this.#spare = w;
    if (
      this.autoDefragMinBytes > 0 && this.#fileSize > this.autoDefragMinBytes &&
      this.#fileSize > 2 * this.sizeInUse() && !this.#closed
    ) {
      this.defrag().catch(() => {});
    }
  }

  #fail(e: unknown): never {
    // A failed append leaves the file in an unknown state: refuse further commits, and tell the owner, which must stop
    // (etcd panics)
    this.#failed = e instanceof Error ? e : new Error(String(e));
    this.#onFailure(this.#failed);
    throw this.#failed;
  }

  #snapshotRecords(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let w = new RecordWriter(Math.min(DEFRAG_RECORD_BYTES * 2, 1024 * 1024));
    const flush = () => {
      if (w.ops === 0) return;
      out.push(w.seal().slice());
      w = new RecordWriter(w.buf.length);
    };
    for (const name of [...this.#buckets.keys(), ...this.#detached.keys()]) {
      w.bucketOp(OP_CREATE_BUCKET, name);
      this.#content(name).forEach((k, v) => {
        w.put(name, k, v);
        if (w.payloadBytes >= DEFRAG_RECORD_BYTES) flush();
      });
    }
    flush();
    return out;
  }
}

/** Rebuilds the buckets while the log is replayed: the "key" bucket as revisions while it can (see ReplayedRevisions). */
class ReplaySink implements OpSink {
  buckets = new Map<string, BucketContent>();
  live = new LiveSize();

  put(bucket: string, p: Uint8Array, ks: number, ke: number, vs: number, ve: number): void {
    const b = this.#bucket(bucket);
    if (b instanceof ReplayedRevisions && b.put(p, ks, ke, vs, ve)) {
      this.live.add(bucket, ke - ks, ve - vs);
      return;
    }
    const old = this.#tree(bucket).set(p.subarray(ks, ke), p.subarray(vs, ve));
    if (old !== undefined) this.live.add(bucket, ke - ks, old.length, -1);
    this.live.add(bucket, ke - ks, ve - vs);
  }

  delete(bucket: string, p: Uint8Array, ks: number, ke: number): void {
    const b = this.#bucket(bucket);
    const oldLength = b instanceof ReplayedRevisions ? b.delete(p, ks, ke) : b.delete(p.subarray(ks, ke))?.length ?? -1;
    if (oldLength >= 0) this.live.add(bucket, ke - ks, oldLength, -1);
  }

  createBucket(bucket: string): void {
    if (!this.buckets.has(bucket)) this.buckets.set(bucket, newBucket(bucket));
  }

  dropBucket(bucket: string): void {
    const b = this.buckets.get(bucket);
    if (b === undefined) return;
    treeOf(b).forEach((k, v) => this.live.add(bucket, k.length, v.length, -1));
    this.buckets.delete(bucket);
  }

  #bucket(name: string): BucketContent {
    const b = this.buckets.get(name);
    if (b === undefined) throw new Error(`op on missing bucket ${name}`);
    return b;
  }

  /** The bucket as a tree, made one if it was revisions. */
  #tree(name: string): BTree<Uint8Array> {
    const t = treeOf(this.#bucket(name));
    this.buckets.set(name, t);
    return t;
  }
}

/** A bucket in memory: a tree, or the "key" bucket's replayed revisions until something needs it as a tree. */
export type BucketContent = BTree<Uint8Array> | ReplayedRevisions;

function newBucket(name: string): BucketContent {
  return name === BUCKET.key ? new ReplayedRevisions() : new BTree();
}

function treeOf(b: BucketContent): BTree<Uint8Array> {
  return b instanceof ReplayedRevisions ? b.toBTree() : b;
}

function parentDir(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}
