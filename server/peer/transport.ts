// The peer transport (etcd's rafthttp), first part: raft messages to the other members through etcd 3.4's pipeline
// (`POST /raft`, one raftpb.Message per request, etcd's headers), and the handler that takes them in. Each peer has
// two senders (lanes: forwarded client requests, replication) that post in order from bounded queues: a slow or dead
// peer never holds up raft or the other peers; what does not fit is dropped and the peer reported unreachable to raft,
// which probes it again later.
// A snapshot goes on its own request (`POST /raft/snapshot`): the raft message, then the leader's backend, streamed
// from its file and written to the follower's disk as it arrives (etcd's snapshotSender and snapshotHandler).
// The long-lived streams (`/raft/stream/...`, stream.ts) carry a peer's messages while they are up; the pipeline
// carries them otherwise.
import { Buffer } from "node:buffer";
import { type PeerRequest, type PeerResponse, plainError } from "./http.ts";
import type { Message, NodeId } from "../../raft/types.ts";
import { MessageType } from "../../raft/types.ts";
import { decodeMessage, encodeMessage } from "../../wal/raft_codec.ts";
import type { Logger } from "../logger.ts";
import type { PeerMetrics } from "../metrics.ts";
import { DETCD_VERSION, ETCD_SERVER_VERSION } from "../version.ts";
import type { BoltImage } from "../../mvcc/bolt_image.ts";
import type { LinkFaults } from "./link_faults.ts";
import { ownEntries, StreamEncoder, StreamReader, type StreamType, StreamWriter } from "./stream.ts";

export const RAFT_PREFIX = "/raft";
export const RAFT_SNAPSHOT_PREFIX = "/raft/snapshot";
export const RAFT_PROBING_PREFIX = "/raft/probing";
/** etcd's errMemberRemoved: a removed member's traffic is answered 410 with it, and it stops on hearing it. */
export const MEMBER_REMOVED = "the member has been permanently removed from the cluster";
/** How often each peer is probed (`GET /raft/probing`) so that a member knows which peers it can reach. */
const PROBE_INTERVAL_MS = 1000;
/** Bytes of the backend read and sent at a time. */
const SNAPSHOT_CHUNK = 1024 * 1024;
/** Messages waiting per peer (etcd's pipeline holds 64 plus its streams' buffers; this pipeline is all there is). */
const QUEUE_LIMIT = 4096;
/** etcd's connReadLimitByte: the largest message body taken. */
const READ_LIMIT = 64 * 1024 * 1024;
/** etcd's version.MinClusterVersion for 3.4. */
const MIN_CLUSTER_VERSION = "3.0.0";
/** How long a post may take before the peer counts as unreachable. */
const POST_TIMEOUT_MS = 5000;

/** A peer's streams: the two it dialed here (writers), the two dialed there (readers). */
interface PeerStreams {
  writers: Record<StreamType, StreamWriter>;
  readers: StreamReader[];
}

export interface TransportOptions {
  localId: NodeId;
  clusterId: () => NodeId;
  /** This member's advertised peer URLs (X-PeerURLs). */
  localUrls: string[];
  /** A peer's advertised URLs, by ID (undefined: not a member). */
  peerUrls: (id: NodeId) => string[] | undefined;
  /** Raft could not reach the peer: it slows down and probes (etcd's ReportUnreachable). */
  unreachable: (id: NodeId) => void;
  /** The peers to probe (the other members). */
  peers: () => NodeId[];
  /** A peer answered that this member was removed from the cluster. */
  removed: () => void;
  /** A peer dialed this member's message stream (it may just have restarted). */
  dialed: (id: NodeId) => void;
  /** A peer answers again (see activeSince). */
  reachable: (id: NodeId) => void;
  /** A peer that has streamed to this member refuses connections: its process is gone (killed, crashed, stopped). */
  gone: (id: NodeId) => void;
  /** A message a peer's stream brought. */
  receive: (m: Message) => void;
  metrics: PeerMetrics;
  logger: Logger;
  /** Injected link faults (tests): messages to a peer lost or held back. */
  faults?: LinkFaults;
}

export class Transport {
  /** Per peer and lane (see laneOf): the messages waiting, and whether a sender is posting them. */
  readonly #queues = new Map<string, Message[]>();
  readonly #sending = new Set<string>();
  readonly #snapshotsInFlight = new Set<AbortController>();
  /** Peers by whether they are detcd, as their latest request said (see takesDetcdBackend). */
  readonly #detcdPeers = new Map<NodeId, boolean>();
  /** Since when (Date.now()) each peer has answered without a failure in between (etcd's ActiveSince). */
  readonly #activeSince = new Map<NodeId, number>();
  readonly #streams = new Map<NodeId, PeerStreams>();
  #prober: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(private readonly opts: TransportOptions) {}

  /**
   * Hands messages to their peers; never waits. A peer's streams take them while it has them dialed (appends on
   * msgappv2, the rest on message, as etcd's peer.pick), the pipeline otherwise.
   */
  send(msgs: Message[]): void {
    if (this.#stopped) return;
    const faults = this.opts.faults;
    for (const m of msgs) {
      if (m.to === this.opts.localId) continue;
      if (faults === undefined) this.#deliver(m);
      else if (!faults.dropTo(m.to)) {
        const ms = faults.delayTo(m.to);
        if (ms > 0) setTimeout(() => !this.#stopped && this.#deliver(m), ms);
        else this.#deliver(m);
      }
    }
  }

  #deliver(m: Message): void {
    const streams = this.#streams.get(m.to);
    if (streams !== undefined) {
      const { msgappv2, message } = streams.writers;
      const w = m.type === MessageType.MsgApp && msgappv2.working ? msgappv2 : message;
      if (w.working) {
        // a full stream buffer means an overloaded link: dropped, and raft slows down (etcd drops it too)
        if (!w.send(m)) this.opts.unreachable(m.to);
        return;
      }
    }
    const key = `${m.to}/${laneOf(m)}`;
    let q = this.#queues.get(key);
    if (q === undefined) this.#queues.set(key, q = []);
    if (q.length >= QUEUE_LIMIT) {
      this.opts.unreachable(m.to);
      return;
    }
    q.push(m);
    if (!this.#sending.has(key)) void this.#drain(m.to, key);
  }

  stop(): void {
    this.#stopped = true;
    this.#queues.clear();
    for (const a of this.#snapshotsInFlight) a.abort();
    clearInterval(this.#prober);
    for (const s of this.#streams.values()) {
      for (const r of s.readers) r.stop();
      for (const w of Object.values(s.writers)) w.close();
    }
    this.#streams.clear();
  }

  /**
   * Dials every peer's streams, and probes every peer each PROBE_INTERVAL_MS (followers exchange no raft traffic, yet
   * must know who is reachable); members that come and go get streams or lose them at each probe.
   */
  start(): void {
    this.syncPeers();
    this.#prober = setInterval(() => {
      this.syncPeers();
      for (const id of this.opts.peers()) void this.#probe(id);
    }, PROBE_INTERVAL_MS);
  }

  /** The writer of `type` for peer `from`, which dialed it; undefined when `from` is not a member. */
  streamWriter(from: NodeId, type: StreamType): StreamWriter | undefined {
    if (this.#stopped || !this.opts.peers().includes(from)) return undefined;
    return this.#peerStreams(from).writers[type];
  }

  /** Streams to every peer, none to a member gone: at start, every second, and when the membership changes. */
  syncPeers(): void {
    if (this.#stopped) return;
    const peers = new Set(this.opts.peers());
    for (const id of peers) this.#peerStreams(id);
    for (const [id, s] of this.#streams) {
      if (peers.has(id)) continue;
      this.#streams.delete(id);
      for (const r of s.readers) r.stop();
      for (const w of Object.values(s.writers)) w.close();
    }
  }

  #peerStreams(id: NodeId): PeerStreams {
    let s = this.#streams.get(id);
    if (s !== undefined) return s;
    const onChange = (type: StreamType) => (working: boolean) => {
      this.#reached(id, working);
      if (!working) return;
      // A peer that dials here is up: our streams to it need not wait for their next dial (up to REDIAL_MS), and
      // its first answers then take a stream, not the pipeline (a restarted follower's first acknowledgements).
      for (const r of s?.readers ?? []) r.redialNow();
      // Told once per peer start, though it dials both streams: raft answers each heartbeat response of a peer it
      // is probing with its probing append again (up to 1 MiB the peer decodes twice).
      if (type === "message") this.opts.dialed(id);
    };
    const hex = id.toString(16), peer = this.opts.metrics;
    const sent = peer.sentBytes.with(hex), received = peer.receivedBytes.with(hex);
    const onWrite = (n: number) => sent.inc(n);
    const reader = (type: StreamType) =>
      new StreamReader({
        type,
        localId: this.opts.localId,
        peerId: id,
        url: () => this.opts.peerUrls(id)?.[0],
        headers: () => ({ ...this.#headers("application/octet-stream"), "x-raft-to": id.toString(16) }),
        receive: this.opts.receive,
        removed: this.opts.removed,
        onRead: (n) => received.inc(n),
        onBroken: () => peer.receivedFailures.with(hex).inc(),
        refused: () => {
          this.#reached(id, false);
          this.opts.gone(id);
        },
        logger: this.opts.logger,
      });
    s = {
      writers: {
        msgappv2: new StreamWriter("msgappv2", onChange("msgappv2"), onWrite),
        message: new StreamWriter("message", onChange("message"), onWrite),
      },
      readers: [reader("msgappv2"), reader("message")],
    };
    this.#streams.set(id, s);
    for (const r of s.readers) r.start();
    return s;
  }

  /** When the peer became reachable and has stayed so (Date.now() ms), 0 when it is not (etcd's ActiveSince). */
  activeSince(id: NodeId): number {
    return this.#activeSince.get(id) ?? 0;
  }

  async #probe(id: NodeId): Promise<void> {
    const urls = this.opts.peerUrls(id);
    if (urls === undefined || urls.length === 0) return;
    try {
      const t0 = performance.now();
      const res = await fetch(new URL(RAFT_PROBING_PREFIX, urls[0]), {
        signal: AbortSignal.timeout(PROBE_INTERVAL_MS),
      });
      await res.body?.cancel();
      this.#reached(id, res.status === 200);
      if (res.status === 200) {
        this.opts.metrics.roundTripTime.with(id.toString(16)).observe((performance.now() - t0) / 1000);
      }
    } catch {
      this.#reached(id, false);
    }
  }

  #reached(id: NodeId, ok: boolean): void {
    if (ok === this.#activeSince.has(id)) return;
    const labels = [this.opts.localId.toString(16), id.toString(16)];
    if (ok) this.#activeSince.set(id, Date.now());
    else {
      this.#activeSince.delete(id);
      this.opts.metrics.disconnectedPeers.with(...labels).inc();
    }
    this.opts.metrics.activePeers.with(...labels).set(ok ? 1 : 0);
    if (ok) this.opts.reachable(id);
  }

  async #drain(to: NodeId, key: string): Promise<void> {
    this.#sending.add(key);
    try {
      const q = this.#queues.get(key)!;
      while (!this.#stopped && q.length > 0) {
        const m = coalesce(q);
        if (!(await this.#post(to, m))) {
          // the peer is down: what waits for it is stale by the time it is back; raft resends what matters
          q.length = 0;
          this.opts.unreachable(to);
        }
      }
    } finally {
      this.#sending.delete(key);
    }
  }

  async #post(to: NodeId, m: Message): Promise<boolean> {
    const urls = this.opts.peerUrls(to);
    if (urls === undefined || urls.length === 0) return false;
    const url = new URL(RAFT_PREFIX, urls[0]);
    const hex = to.toString(16);
    try {
      const data = encodeMessage(m);
      const res = await fetch(url, {
        method: "POST",
        body: data as Uint8Array<ArrayBuffer>,
        headers: this.#headers("application/protobuf"),
        signal: AbortSignal.timeout(POST_TIMEOUT_MS),
      });
      const body = await res.text();
      this.#reached(to, res.status === 204);
      if (res.status === 204) {
        this.opts.metrics.sentBytes.with(hex).inc(data.length);
        return true;
      }
      this.opts.metrics.sentFailures.with(hex).inc();
      if (res.status === 410) this.opts.removed();
      this.opts.logger.warn("failed to send raft message", {
        "remote-peer-id": to.toString(16),
        "message-type": MessageType[m.type],
        status: res.status,
        error: body.trim(),
      });
      return false;
    } catch {
      this.#reached(to, false);
      this.opts.metrics.sentFailures.with(hex).inc();
      return false;
    }
  }

  /**
   * Streams a snapshot message and the backend `db` (closed after) to the message's peer; resolves true once the peer
   * has stepped it into raft (etcd's snapshotSender.send). Not queued: raft sends a peer one snapshot at a time.
   */
  async sendSnapshot(m: Message, db: SnapshotBody): Promise<boolean> {
    const urls = this.opts.peerUrls(m.to);
    const hex = m.to.toString(16);
    const fields = {
      "snapshot-index": m.snapshot?.metadata.index,
      "remote-peer-id": hex,
      bytes: db.size,
    };
    const abort = new AbortController();
    this.#snapshotsInFlight.add(abort);
    try {
      if (this.#stopped || urls === undefined || urls.length === 0) return false;
      this.opts.logger.info("sending database snapshot", fields);
      // the message as the message stream frames it (etcd's messageEncoder), then the backend
      const prefix = new StreamEncoder("message").encode([m]);
      const body = new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(prefix),
        pull: async (c) => {
          const chunk = await db.next();
          if (chunk === null) c.close();
          else c.enqueue(chunk);
        },
      });
      const res = await fetch(new URL(RAFT_SNAPSHOT_PREFIX, urls[0]), {
        method: "POST",
        body,
        headers: this.#headers("application/octet-stream"),
        signal: abort.signal,
      });
      const text = await res.text();
      if (res.status === 204) {
        this.opts.logger.info("sent database snapshot", fields);
        this.opts.metrics.sentBytes.with(hex).inc(prefix.length + db.size);
        this.opts.metrics.snapshotSendSuccess.with(hex).inc();
        return true;
      }
      this.opts.metrics.snapshotSendFailures.with(hex).inc();
      this.opts.logger.warn("failed to send database snapshot", { ...fields, status: res.status, error: text.trim() });
      return false;
    } catch (err) {
      this.opts.logger.warn("failed to send database snapshot", { ...fields, error: String(err) });
      this.opts.metrics.snapshotSendFailures.with(hex).inc();
      return false;
    } finally {
      this.#snapshotsInFlight.delete(abort);
      db.close();
    }
  }

  /**
   * Whether a peer reads detcd's own backend in a snapshot: it said so (X-Detcd-Version) on its latest request to
   * this member. One not heard from yet, or an etcd member, gets etcd's bbolt file, which detcd reads too.
   */
  takesDetcdBackend(id: NodeId): boolean {
    return this.#detcdPeers.get(id) === true;
  }

  /** Notes what a peer's request said of it (see takesDetcdBackend). */
  notePeer(id: NodeId, detcd: boolean): void {
    this.#detcdPeers.set(id, detcd);
  }

  /** The headers of every request to a peer (etcd's createPostRequest), and detcd's version, which etcd ignores. */
  #headers(contentType: string): Record<string, string> {
    return {
      "content-type": contentType,
      "x-detcd-version": DETCD_VERSION,
      "x-server-from": this.opts.localId.toString(16),
      "x-server-version": ETCD_SERVER_VERSION,
      "x-min-cluster-version": MIN_CLUSTER_VERSION,
      "x-etcd-cluster-id": this.opts.clusterId().toString(16),
      "x-peerurls": this.opts.localUrls.join(","),
    };
  }
}

/**
 * A peer's messages go in two lanes, each in order: what a follower forwards for its clients (proposals, read-index
 * requests) does not wait behind replication traffic, nor replication behind it; raft orders neither against the other.
 */
function laneOf(m: Message): number {
  return m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex ? 0 : 1;
}

/** Bytes of entries a coalesced MsgApp may carry (raft's own maxSizePerMsg is 1 MiB). */
const MAX_COALESCED_BYTES = 4 * 1024 * 1024;

/**
 * The next message of a peer's queue, with what is queued right behind it and says the same folded in, so a busy
 * member sends one request where it made many Readys: consecutive MsgApps of one term whose entries continue each
 * other are one MsgApp (the later commit index included); a follower's consecutive proposals are one MsgProp (each
 * entry keeps its own request ID); consecutive accepting MsgAppResps of one term are the last one, the highest index
 * acknowledged. Everything else goes as it is, in order.
 */
export function coalesce(q: Message[]): Message {
  const first = q.shift()!;
  if (q.length === 0 || q[0].type !== first.type) return first;
  if (first.type === MessageType.MsgProp) return coalesceProposals(first, q);
  if (first.type === MessageType.MsgAppResp) {
    let m = first;
    while (q.length > 0 && q[0].type === MessageType.MsgAppResp && !q[0].reject && !m.reject && q[0].term === m.term) {
      m = q.shift()!;
    }
    return m;
  }
  if (first.type !== MessageType.MsgApp) return first;
  const m = { ...first, entries: [...first.entries] };
  let bytes = m.entries.reduce((n, e) => n + e.data.length, 0);
  while (q.length > 0) {
    const next = q[0];
    const last = m.entries.length > 0 ? m.entries[m.entries.length - 1] : undefined;
    const lastIndex = m.index + m.entries.length, lastTerm = last?.term ?? m.logTerm;
    if (
      next.type !== MessageType.MsgApp || next.term !== m.term || next.index !== lastIndex ||
      next.logTerm !== lastTerm || bytes > MAX_COALESCED_BYTES
    ) break;
    q.shift();
    for (const e of next.entries) {
      m.entries.push(e);
      bytes += e.data.length;
    }
    m.commit = next.commit;
  }
  return m;
}

function coalesceProposals(first: Message, q: Message[]): Message {
  const m = { ...first, entries: [...first.entries] };
  let bytes = m.entries.reduce((n, e) => n + e.data.length, 0);
  while (q.length > 0 && q[0].type === MessageType.MsgProp && bytes <= MAX_COALESCED_BYTES) {
    for (const e of q.shift()!.entries) {
      m.entries.push(e);
      bytes += e.data.length;
    }
  }
  return m;
}

/** A peer request's body, up to etcd's connReadLimitByte; a larger one is cut off (the connection destroyed). */
export function readPeerBody(req: PeerRequest, onBody: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size > READ_LIMIT) req.socket.destroy();
    else chunks.push(c);
  });
  req.on("end", () => onBody(Buffer.concat(chunks, size)));
}

interface PeerHandlerOptions {
  clusterId: () => NodeId;
  receive: (m: Message) => void;
  /** Whether a member ID was removed from the cluster: its traffic is refused with 410. */
  isRemoved: (id: NodeId) => boolean;
  /** Told of every request accepted: its member, and whether it is detcd (see Transport.takesDetcdBackend). */
  notePeer?: (id: NodeId, detcd: boolean) => void;
  metrics: PeerMetrics;
  logger: Logger;
}

/**
 * etcd's checks of every peer request: the method, from this cluster (412 "cluster ID mismatch" otherwise), not from
 * a removed member (410).
 */
export function acceptPeerRequest(
  req: PeerRequest,
  res: PeerResponse,
  opts: Pick<PeerHandlerOptions, "clusterId" | "isRemoved" | "logger" | "notePeer">,
  method = "POST",
): boolean {
  res.setHeader("X-Etcd-Cluster-ID", opts.clusterId().toString(16));
  res.setHeader("X-Server-Version", ETCD_SERVER_VERSION);
  if (req.method !== method) {
    res.writeHead(405, { allow: method, "content-type": "text/plain; charset=utf-8" }).end("Method Not Allowed\n");
    return false;
  }
  // etcd's checkVersionCompatibility, by major.minor; a header missing is etcd 2.0's
  const remote = majorMinor(String(req.headers["x-server-version"] ?? "2.0.0"));
  const remoteMin = majorMinor(String(req.headers["x-min-cluster-version"] ?? "2.0.0"));
  if (
    remote === undefined || remoteMin === undefined || remote < majorMinor(MIN_CLUSTER_VERSION)! ||
    remoteMin > majorMinor(ETCD_SERVER_VERSION)!
  ) {
    opts.logger.warn("failed to check version compatibility", {
      "remote-peer-id": String(req.headers["x-server-from"]),
      "remote-peer-server-version": String(req.headers["x-server-version"]),
      "remote-peer-server-minimum-cluster-version": String(req.headers["x-min-cluster-version"]),
      "local-server-version": ETCD_SERVER_VERSION,
      "local-server-minimum-cluster-version": MIN_CLUSTER_VERSION,
    });
    plainError(res, 412, "incompatible version");
    return false;
  }
  const cid = req.headers["x-etcd-cluster-id"];
  if (cid !== opts.clusterId().toString(16)) {
    opts.logger.warn("request cluster ID mismatch", {
      "local-member-cluster-id": opts.clusterId().toString(16),
      "remote-peer-cluster-id": String(cid),
      "remote-peer-id": String(req.headers["x-server-from"]),
    });
    plainError(res, 412, "cluster ID mismatch");
    return false;
  }
  const from = /^[0-9a-f]{1,16}$/.test(String(req.headers["x-server-from"]))
    ? BigInt(`0x${req.headers["x-server-from"]}`)
    : 0n;
  if (opts.isRemoved(from)) {
    opts.logger.warn("rejected traffic from a removed member", { "remote-peer-id": from.toString(16) });
    plainError(res, 410, MEMBER_REMOVED);
    return false;
  }
  opts.notePeer?.(from, req.headers["x-detcd-version"] !== undefined);
  return true;
}

/** A snapshot's backend as it goes to a peer: pieces of at most 1 MiB in order, null at the end. */
export interface SnapshotBody {
  readonly size: number;
  next(): Promise<Uint8Array | null>;
  close(): void;
}

/** The first `size` bytes of a backend log file (see Backend.snapshotFile), which close() closes. */
export function fileSnapshotBody(db: { file: Deno.FsFile; size: number }): SnapshotBody {
  let sent = 0;
  return {
    size: db.size,
    next: async () => {
      if (sent === db.size) return null;
      const buf = new Uint8Array(Math.min(SNAPSHOT_CHUNK, db.size - sent));
      await db.file.seek(sent, Deno.SeekMode.Start);
      const n = await db.file.read(buf);
      if (n === null) throw new Error("the backend file ended before its snapshot size");
      sent += n;
      return buf.subarray(0, n);
    },
    close: () => db.file.close(),
  };
}

/** A bbolt file (etcd's backend, see BoltImage), its pages gathered into pieces as they are asked for. */
export function boltSnapshotBody(image: BoltImage): SnapshotBody {
  const pieces = image.pieces(SNAPSHOT_CHUNK);
  return {
    size: image.size,
    next: () => {
      const r = pieces.next();
      return Promise.resolve(r.done ? null : r.value);
    },
    close: () => void pieces.return(undefined),
  };
}

/** `GET /raft/probing` (etcd's prober handler): answers that this member is up. */
export function probingHandler(_req: PeerRequest, res: PeerResponse): void {
  res.writeHead(200, { "content-type": "application/json" }).end(
    `${JSON.stringify({ OK: true, Now: new Date().toISOString() })}\n`,
  );
}

/** A version's major and minor as one comparable number (3.4.23 -> 3004), undefined when it is not a version. */
function majorMinor(v: string): number | undefined {
  const m = /^v?(\d+)\.(\d+)\.\d+/.exec(v);
  return m === null ? undefined : Number(m[1]) * 1000 + Number(m[2]);
}

/**
 * `POST /raft` (etcd's pipelineHandler): a message from a member of this cluster, stepped into raft; 204 once it
 * has been. Another cluster's traffic gets 412 and etcd's "cluster ID mismatch".
 */
export function pipelineHandler(opts: PeerHandlerOptions): (req: PeerRequest, res: PeerResponse) => void {
  return (req, res) => {
    if (!acceptPeerRequest(req, res, opts)) return;
    const from = String(req.headers["x-server-from"]);
    readPeerBody(req, (body) => {
      let m: Message;
      try {
        m = ownEntries(decodeMessage(body));
      } catch {
        opts.metrics.receivedFailures.with(from).inc();
        plainError(res, 400, "error unmarshalling raft message");
        return;
      }
      opts.metrics.receivedBytes.with(from).inc(body.length);
      opts.receive(m);
      res.writeHead(204).end();
    });
  };
}

/**
 * `POST /raft/snapshot` (etcd's snapshotHandler): the length-prefixed MsgSnap, then the backend, which is written
 * to `saveDb` (the snapshot directory) as it arrives, before the message is stepped into raft; 204 once it has been.
 */
export function snapshotHandler(
  opts: PeerHandlerOptions & { saveDb: (chunks: AsyncIterable<Uint8Array>, index: number) => Promise<number> },
): (req: PeerRequest, res: PeerResponse) => void {
  return (req, res) => {
    if (!acceptPeerRequest(req, res, opts)) return;
    void receiveSnapshot(req, res, opts);
  };
}

async function receiveSnapshot(
  req: PeerRequest,
  res: PeerResponse,
  opts: PeerHandlerOptions & { saveDb: (chunks: AsyncIterable<Uint8Array>, index: number) => Promise<number> },
): Promise<void> {
  // the rest of the body is not read: the connection ends once the answer is out
  const refuse = (status: number, msg: string) => {
    plainError(res, status, msg);
    req.socket.end();
  };
  const it = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  const fill = async (n: number) => {
    while (head.length < n) {
      const r = await it.next();
      if (r.done) throw new Error("unexpected EOF");
      head = Buffer.concat([head, r.value]);
    }
  };
  let m: Message;
  try {
    await fill(8);
    const len = head.readBigUInt64BE(0);
    if (len > BigInt(READ_LIMIT)) throw new Error("raft message too large");
    await fill(8 + Number(len));
    m = decodeMessage(head.subarray(8, 8 + Number(len)));
  } catch (err) {
    opts.logger.warn("failed to decode Raft message", { error: String(err) });
    return refuse(400, `failed to decode raft message (${(err as Error).message})`);
  }
  const fields = {
    "remote-snapshot-sender-id": m.from.toString(16),
    "incoming-snapshot-index": m.snapshot?.metadata.index,
  };
  if (m.type !== MessageType.MsgSnap || m.snapshot === undefined) {
    opts.logger.warn("unexpected Raft message type", { ...fields, "message-type": MessageType[m.type] });
    return refuse(400, "wrong raft message type");
  }
  opts.logger.info("receiving database snapshot", fields);
  const rest = head.subarray(8 + Number(head.readBigUInt64BE(0)));
  async function* db(): AsyncGenerator<Uint8Array> {
    if (rest.length > 0) yield rest;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  let size: number;
  const from = m.from.toString(16);
  try {
    size = await opts.saveDb(db(), m.snapshot.metadata.index);
  } catch (err) {
    opts.metrics.snapshotReceiveFailures.with(from).inc();
    opts.logger.warn("failed to save incoming database snapshot", { ...fields, error: String(err) });
    return refuse(500, `failed to save KV snapshot (${(err as Error).message})`);
  }
  opts.logger.info("received and saved database snapshot", { ...fields, "incoming-snapshot-size-bytes": size });
  opts.metrics.receivedBytes.with(from).inc(size);
  opts.metrics.snapshotReceiveSuccess.with(from).inc();
  opts.receive(m);
  res.writeHead(204).end();
}
