// A small Prometheus registry (text exposition format 0.0.4) and the etcd metrics the server updates. Metric objects
// are created once and updated in place, so hot paths do `metrics.x.inc()` without allocating.
import { ETCD_SERVER_VERSION } from "./version.ts";
import type { GrpcObserver } from "../rpc/grpc_handler.ts";
import type { MethodEntry } from "../rpc/services.ts";
import { grpcCodeName } from "../rpc/status_codes.ts";

type Kind = "counter" | "gauge" | "histogram";

/** Prometheus number formatting: integers plainly, infinities as +Inf/-Inf. */
function fmtNum(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** Pre-rendered `{a="x",b="y"}` (or "") for a fixed label set. */
function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escapeLabel(values[i])}"`).join(",")}}`;
}

export class Counter {
  value = 0;
  inc(by = 1): void {
    if (by < 0) throw new Error("counter cannot decrease");
    this.value += by;
  }
}

export class Gauge {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class Histogram {
  /** counts[i] = observations <= bounds[i] (non-cumulative per bucket; cumulated when rendered). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

/** prometheus.ExponentialBuckets. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** A metric family with labels; children are created on first use and should be kept by hot-path callers. */
export class Vec<T extends Counter | Gauge | Histogram> {
  readonly children = new Map<string, { labels: string; metric: T }>();
  constructor(readonly labelNames: readonly string[], private readonly make: () => T) {}
  with(...values: string[]): T {
    if (values.length !== this.labelNames.length) {
      throw new Error(`expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join("\u0000");
    let child = this.children.get(key);
    if (!child) {
      child = { labels: labelText(this.labelNames, values), metric: this.make() };
      this.children.set(key, child);
    }
    return child.metric;
  }
}

interface Family {
  name: string;
  help: string;
  kind: Kind;
  vec: Vec<Counter | Gauge | Histogram>;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  private register<T extends Counter | Gauge | Histogram>(
    name: string,
    help: string,
    kind: Kind,
    labelNames: readonly string[],
    make: () => T,
  ): Vec<T> {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name ${name}`);
    if (this.families.has(name)) throw new Error(`metric ${name} already registered`);
    const vec = new Vec<T>(labelNames, make);
    this.families.set(name, { name, help, kind, vec });
    return vec;
  }

  counter(name: string, help: string): Counter {
    return this.register(name, help, "counter", [], () => new Counter()).with();
  }
  gauge(name: string, help: string): Gauge {
    return this.register(name, help, "gauge", [], () => new Gauge()).with();
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.register(name, help, "histogram", [], () => new Histogram(buckets)).with();
  }
  counterVec(name: string, help: string, labelNames: readonly string[]): Vec<Counter> {
    return this.register(name, help, "counter", labelNames, () => new Counter());
  }
  gaugeVec(name: string, help: string, labelNames: readonly string[]): Vec<Gauge> {
    return this.register(name, help, "gauge", labelNames, () => new Gauge());
  }
  histogramVec(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Vec<Histogram> {
    return this.register(name, help, "histogram", labelNames, () => new Histogram(buckets));
  }

  /** The registry in Prometheus text format, with process metrics sampled now. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      if (f.vec.children.size === 0) continue; // a labelled family nobody has used yet has no samples
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`);
      for (const { labels, metric } of f.vec.children.values()) {
        if (metric instanceof Histogram) renderHistogram(out, f.name, labels, metric);
        else out.push(`${f.name}${labels} ${fmtNum(metric.value)}`);
      }
    }
    renderProcess(out);
    return out.join("\n") + "\n";
  }
}

function renderHistogram(out: string[], name: string, labels: string, h: Histogram): void {
  // "le" goes last inside the braces of an existing label set.
  const prefix = labels === "" ? "{" : labels.slice(0, -1) + ",";
  let cum = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cum += h.counts[i];
    out.push(`${name}_bucket${prefix}le="${fmtNum(h.bounds[i])}"} ${cum}`);
  }
  out.push(`${name}_bucket${prefix}le="+Inf"} ${h.count}`, `${name}_sum${labels} ${fmtNum(h.sum)}`);
  out.push(`${name}_count${labels} ${h.count}`);
}

const processStartSeconds = (Date.now() - performance.now()) / 1000;

function renderProcess(out: string[]): void {
  out.push(
    "# HELP process_resident_memory_bytes Resident memory size in bytes.",
    "# TYPE process_resident_memory_bytes gauge",
    `process_resident_memory_bytes ${Deno.memoryUsage().rss}`,
    "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
    "# TYPE process_start_time_seconds gauge",
    `process_start_time_seconds ${fmtNum(Math.floor(processStartSeconds * 100) / 100)}`,
  );
}

/** etcd's disk latency buckets: 1ms .. 8.192s. */
const DISK_BUCKETS = exponentialBuckets(0.001, 2, 14);

/** The etcd 3.4 metrics detcd maintains, under etcd's names and types (etcdserver/metrics.go, mvcc, wal, backend). */
export class ServerMetrics {
  readonly hasLeader: Gauge;
  readonly isLeader: Gauge;
  readonly leaderChanges: Counter;
  /** A gauge in etcd: set to the raft commit index. */
  readonly proposalsCommitted: Gauge;
  /** A gauge in etcd: set to (or incremented with) the applied index. */
  readonly proposalsApplied: Gauge;
  readonly proposalsPending: Gauge;
  readonly proposalsFailed: Counter;
  readonly dbTotalSize: Gauge;
  readonly dbTotalSizeInUse: Gauge;
  readonly keysTotal: Gauge;
  readonly watchStreamTotal: Gauge;
  readonly watcherTotal: Gauge;
  readonly slowWatcherTotal: Gauge;
  readonly watchEventsTotal: Counter;
  readonly watchPendingEvents: Gauge;
  readonly leaseGranted: Counter;
  readonly leaseRevoked: Counter;
  readonly leaseRenewed: Counter;
  readonly leaseExpired: Counter;
  readonly walFsyncDuration: Histogram;
  readonly backendCommitDuration: Histogram;
  readonly clientGrpcReceivedBytes: Counter;
  readonly clientGrpcSentBytes: Counter;
  /** grpc_server_handled_total by (grpc_type, grpc_service, grpc_method, grpc_code); cache `.with(...)` results. */
  readonly grpcHandled: Vec<Counter>;
  /** rafthttp's metrics (etcd_network_*), labelled by peer ID. */
  readonly peer: PeerMetrics;
  readonly grpcStarted: Vec<Counter>;

  constructor(registry: MetricsRegistry, serverVersion = ETCD_SERVER_VERSION) {
    this.peer = new PeerMetrics(registry);
    const r = registry;
    this.hasLeader = r.gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.");
    this.isLeader = r.gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.");
    this.leaderChanges = r.counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.");
    this.proposalsCommitted = r.gauge(
      "etcd_server_proposals_committed_total",
      "The total number of consensus proposals committed.",
    );
    this.proposalsApplied = r.gauge(
      "etcd_server_proposals_applied_total",
      "The total number of consensus proposals applied.",
    );
    this.proposalsPending = r.gauge(
      "etcd_server_proposals_pending",
      "The current number of pending proposals to commit.",
    );
    this.proposalsFailed = r.counter(
      "etcd_server_proposals_failed_total",
      "The total number of failed proposals seen.",
    );
    this.dbTotalSize = r.gauge(
      "etcd_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
    );
    this.dbTotalSizeInUse = r.gauge(
      "etcd_mvcc_db_total_size_in_use_in_bytes",
      "Total size of the underlying database logically in use in bytes.",
    );
    this.keysTotal = r.gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.");
    this.watchStreamTotal = r.gauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.");
    this.watcherTotal = r.gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.");
    this.slowWatcherTotal = r.gauge(
      "etcd_debugging_mvcc_slow_watcher_total",
      "Total number of unsynced slow watchers.",
    );
    this.watchEventsTotal = r.counter(
      "etcd_debugging_mvcc_events_total",
      "Total number of events sent by this member.",
    );
    this.watchPendingEvents = r.gauge(
      "etcd_debugging_mvcc_pending_events_total",
      "Total number of pending events to be sent.",
    );
    this.leaseGranted = r.counter("etcd_debugging_lease_granted_total", "The total number of granted leases.");
    this.leaseRevoked = r.counter("etcd_debugging_lease_revoked_total", "The total number of revoked leases.");
    this.leaseRenewed = r.counter(
      "etcd_debugging_lease_renewed_total",
      "The number of renewed leases seen by the leader.",
    );
    this.leaseExpired = r.counter("etcd_debugging_server_lease_expired_total", "The total number of expired leases.");
    this.walFsyncDuration = r.histogram(
      "etcd_disk_wal_fsync_duration_seconds",
      "The latency distributions of fsync called by WAL.",
      DISK_BUCKETS,
    );
    this.backendCommitDuration = r.histogram(
      "etcd_disk_backend_commit_duration_seconds",
      "The latency distributions of commit called by backend.",
      DISK_BUCKETS,
    );
    this.clientGrpcReceivedBytes = r.counter(
      "etcd_network_client_grpc_received_bytes_total",
      "The total number of bytes received from grpc clients.",
    );
    this.clientGrpcSentBytes = r.counter(
      "etcd_network_client_grpc_sent_bytes_total",
      "The total number of bytes sent to grpc clients.",
    );
    r.gaugeVec("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", [
      "server_version",
    ]).with(serverVersion).set(1);
    this.grpcStarted = r.counterVec(
      "grpc_server_started_total",
      "Total number of RPCs started on the server.",
      ["grpc_type", "grpc_service", "grpc_method"],
    );
    this.grpcHandled = r.counterVec(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success or failure.",
      ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
    );
  }
}

/** go-grpc-prometheus's grpc_type label of a method kind. */
const GRPC_TYPES: Record<MethodEntry["call"]["kind"], string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

/** Counts gRPC calls in grpc_server_{started,handled}_total and their bytes in etcd's codec counters. */
export function grpcMetricsObserver(m: ServerMetrics): GrpcObserver {
  // the labelled children of each method, made once
  const children = new Map<MethodEntry, { started: Counter; handled: Map<number, Counter> }>();
  const of = (e: MethodEntry) => {
    let c = children.get(e);
    if (c === undefined) {
      children.set(e, c = { started: m.grpcStarted.with(...labels(e)), handled: new Map() });
    }
    return c;
  };
  const labels = (
    e: MethodEntry,
  ): [string, string, string] => [GRPC_TYPES[e.call.kind], e.service.typeName, e.method.name];
  return {
    started: (e) => of(e).started.inc(),
    handled: (e, code) => {
      const c = of(e);
      let h = c.handled.get(code);
      if (h === undefined) c.handled.set(code, h = m.grpcHandled.with(...labels(e), grpcCodeName(code)));
      h.inc();
    },
    received: (n) => m.clientGrpcReceivedBytes.inc(n),
    sent: (n) => m.clientGrpcSentBytes.inc(n),
  };
}

/** etcd's rafthttp metrics: the peer connections, bytes and failures each way, round trips, snapshots. */
export class PeerMetrics {
  readonly activePeers: Vec<Gauge>;
  readonly disconnectedPeers: Vec<Counter>;
  readonly sentBytes: Vec<Counter>;
  readonly receivedBytes: Vec<Counter>;
  readonly sentFailures: Vec<Counter>;
  readonly receivedFailures: Vec<Counter>;
  readonly roundTripTime: Vec<Histogram>;
  readonly snapshotSendSuccess: Vec<Counter>;
  readonly snapshotSendFailures: Vec<Counter>;
  readonly snapshotReceiveSuccess: Vec<Counter>;
  readonly snapshotReceiveFailures: Vec<Counter>;

  constructor(r: MetricsRegistry) {
    const n = "etcd_network_";
    this.activePeers = r.gaugeVec(`${n}active_peers`, "The current number of active peer connections.", [
      "Local",
      "Remote",
    ]);
    this.disconnectedPeers = r.counterVec(`${n}disconnected_peers_total`, "The total number of disconnected peers.", [
      "Local",
      "Remote",
    ]);
    this.sentBytes = r.counterVec(`${n}peer_sent_bytes_total`, "The total number of bytes sent to peers.", ["To"]);
    this.receivedBytes = r.counterVec(
      `${n}peer_received_bytes_total`,
      "The total number of bytes received from peers.",
      ["From"],
    );
    this.sentFailures = r.counterVec(`${n}peer_sent_failures_total`, "The total number of send failures from peers.", [
      "To",
    ]);
    this.receivedFailures = r.counterVec(
      `${n}peer_received_failures_total`,
      "The total number of receive failures from peers.",
      ["From"],
    );
    this.roundTripTime = r.histogramVec(
      `${n}peer_round_trip_time_seconds`,
      "Round-Trip-Time histogram between peers",
      ["To"],
      exponentialBuckets(0.0001, 2, 16),
    );
    this.snapshotSendSuccess = r.counterVec(`${n}snapshot_send_success`, "Total number of successful snapshot sends", [
      "To",
    ]);
    this.snapshotSendFailures = r.counterVec(`${n}snapshot_send_failures`, "Total number of snapshot send failures", [
      "To",
    ]);
    this.snapshotReceiveSuccess = r.counterVec(
      `${n}snapshot_receive_success`,
      "Total number of successful snapshot receives",
      ["From"],
    );
    this.snapshotReceiveFailures = r.counterVec(
      `${n}snapshot_receive_failures`,
      "Total number of snapshot receive failures",
      ["From"],
    );
  }
}
