// The Prometheus registry, checked by parsing its text output back.
import assert from "node:assert/strict";
import { exponentialBuckets, MetricsRegistry, ServerMetrics } from "../../server/metrics.ts";
import { find, parseExposition } from "./exposition.ts";

Deno.test("counters, gauges and labelled families render and parse back", () => {
  const r = new MetricsRegistry();
  const c = r.counter("test_requests_total", "Requests.\nSecond line \\ backslash");
  const g = r.gauge("test_temperature", "Temperature.");
  const v = r.counterVec("test_handled_total", "Handled.", ["method", "code"]);
  c.inc();
  c.inc(2);
  g.set(5);
  g.dec(1.5);
  v.with("Range", "OK").inc();
  v.with('we"ird\\na\nme', "OK").inc(4);
  v.with("Range", "OK").inc();
  const { types, samples } = parseExposition(r.render());
  assert.equal(types.get("test_requests_total"), "counter");
  assert.equal(types.get("test_temperature"), "gauge");
  assert.equal(find(samples, "test_requests_total"), 3);
  assert.equal(find(samples, "test_temperature"), 3.5);
  assert.equal(find(samples, "test_handled_total", { method: "Range", code: "OK" }), 2);
  assert.equal(find(samples, "test_handled_total", { method: 'we"ird\\na\nme' }), 4);
  assert.ok(r.render().includes("# HELP test_requests_total Requests.\\nSecond line \\\\ backslash\n"));
  assert.throws(() => c.inc(-1));
  assert.throws(() => v.with("only-one"));
  assert.throws(() => r.gauge("test_temperature", "again"), /already registered/);
  assert.throws(() => r.gauge("bad-name", "x"), /invalid metric name/);
});

Deno.test("histograms render cumulative buckets, +Inf, sum and count", () => {
  const r = new MetricsRegistry();
  const h = r.histogram("test_latency_seconds", "Latency.", [0.1, 1, 10]);
  for (const x of [0.05, 0.1, 0.5, 5, 50]) h.observe(x);
  const { types, samples } = parseExposition(r.render());
  assert.equal(types.get("test_latency_seconds"), "histogram");
  const buckets = samples.filter((s) => s.name === "test_latency_seconds_bucket").map((s) => [s.labels.le, s.value]);
  assert.deepEqual(buckets, [["0.1", 2], ["1", 3], ["10", 4], ["+Inf", 5]]);
  assert.equal(find(samples, "test_latency_seconds_sum"), 55.65);
  assert.equal(find(samples, "test_latency_seconds_count"), 5);
});

Deno.test("etcd's disk buckets are 1ms doubling to 8.192s", () => {
  const b = exponentialBuckets(0.001, 2, 14);
  assert.equal(b.length, 14);
  assert.equal(b[0], 0.001);
  assert.equal(b[13], 8.192);
});

Deno.test("ServerMetrics registers etcd's metric names and types", () => {
  const r = new MetricsRegistry();
  const m = new ServerMetrics(r, "3.4.99");
  m.hasLeader.set(1);
  m.leaderChanges.inc();
  m.proposalsCommitted.set(42);
  m.walFsyncDuration.observe(0.003);
  m.backendCommitDuration.observe(20);
  m.grpcHandled.with("unary", "etcdserverpb.KV", "Range", "OK").inc();
  const { types, samples } = parseExposition(r.render());
  const want: Record<string, string> = {
    etcd_server_has_leader: "gauge",
    etcd_server_is_leader: "gauge",
    etcd_server_leader_changes_seen_total: "counter",
    etcd_server_proposals_committed_total: "gauge",
    etcd_server_proposals_applied_total: "gauge",
    etcd_server_proposals_pending: "gauge",
    etcd_server_proposals_failed_total: "counter",
    etcd_mvcc_db_total_size_in_bytes: "gauge",
    etcd_mvcc_db_total_size_in_use_in_bytes: "gauge",
    etcd_debugging_mvcc_keys_total: "gauge",
    etcd_disk_wal_fsync_duration_seconds: "histogram",
    etcd_disk_backend_commit_duration_seconds: "histogram",
    etcd_network_client_grpc_received_bytes_total: "counter",
    etcd_network_client_grpc_sent_bytes_total: "counter",
    etcd_server_version: "gauge",
    grpc_server_handled_total: "counter",
    process_resident_memory_bytes: "gauge",
    process_start_time_seconds: "gauge",
  };
  for (const [name, type] of Object.entries(want)) assert.equal(types.get(name), type, name);
  assert.equal(find(samples, "etcd_server_version", { server_version: "3.4.99" }), 1);
  assert.equal(find(samples, "etcd_server_has_leader"), 1);
  assert.equal(find(samples, "etcd_server_proposals_committed_total"), 42);
  assert.equal(find(samples, "etcd_disk_wal_fsync_duration_seconds_bucket", { le: "0.004" }), 1);
  assert.equal(find(samples, "etcd_disk_wal_fsync_duration_seconds_bucket", { le: "0.002" }), 0);
  assert.equal(find(samples, "etcd_disk_backend_commit_duration_seconds_bucket", { le: "8.192" }), 0);
  assert.equal(find(samples, "etcd_disk_backend_commit_duration_seconds_bucket", { le: "+Inf" }), 1);
  assert.equal(
    find(samples, "grpc_server_handled_total", {
      grpc_type: "unary",
      grpc_service: "etcdserverpb.KV",
      grpc_method: "Range",
      grpc_code: "OK",
    }),
    1,
  );
  assert.ok(find(samples, "process_resident_memory_bytes")! > 1e6);
  const start = find(samples, "process_start_time_seconds")!;
  assert.ok(start <= Date.now() / 1000 && start > Date.now() / 1000 - 3600, `start time ${start}`);
});
