// /metrics moves with the traffic: scrape, run a known load through etcdctl (puts, ranges, one failing range),
// scrape again, and each counter moved by what the load must have made it move.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { PutRequestSchema } from "../../rpc/gen/etcdserverpb/rpc_pb.ts";
import { find, parseExposition, type Sample } from "../metrics/exposition.ts";
import { ctl, etcdctl, noEtcdctl, startMember } from "./harness.ts";

const opts = { ignore: noEtcdctl, sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();

Deno.test({
  name: "metrics: gRPC calls, bytes, proposals and the WAL move by what a known load makes them",
  ...opts,
  fn: async () => {
    const m = await startMember();
    const scrape = async () => parseExposition(await (await fetch(`http://${m.endpoint}/metrics`)).text()).samples;
    const kv = (method: string, code?: string) => ({
      grpc_type: "unary",
      grpc_service: "etcdserverpb.KV",
      grpc_method: method,
      ...(code === undefined ? {} : { grpc_code: code }),
    });
    const delta = (before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}) =>
      (find(after, name, labels) ?? 0) - (find(before, name, labels) ?? 0);
    try {
      const before = await scrape();
      let putBytes = 0;
      for (let i = 0; i < 5; i++) {
        await ctl(m.endpoint, "put", `metric${i}`, "v".repeat(100));
        putBytes += toBinary(
          PutRequestSchema,
          create(PutRequestSchema, { key: enc.encode(`metric${i}`), value: enc.encode("v".repeat(100)) }),
        ).length;
      }
      for (let i = 0; i < 3; i++) await ctl(m.endpoint, "get", `metric${i}`);
      assertEquals((await etcdctl(m.endpoint, ["get", "metric0", "--rev=1000"])).code, 1);
      const after = await scrape();

      assertEquals(delta(before, after, "grpc_server_started_total", kv("Put")), 5);
      assertEquals(delta(before, after, "grpc_server_handled_total", kv("Put", "OK")), 5);
      assertEquals(delta(before, after, "grpc_server_started_total", kv("Range")), 4);
      assertEquals(delta(before, after, "grpc_server_handled_total", kv("Range", "OK")), 3);
      assertEquals(delta(before, after, "grpc_server_handled_total", kv("Range", "OutOfRange")), 1);
      // requests: at least the puts' messages; responses: at least the three values read back
      assert(delta(before, after, "etcd_network_client_grpc_received_bytes_total") >= putBytes);
      assert(delta(before, after, "etcd_network_client_grpc_sent_bytes_total") >= 300);
      assert(delta(before, after, "etcd_server_proposals_committed_total") >= 5);
      assertEquals(
        delta(before, after, "etcd_server_proposals_applied_total"),
        delta(before, after, "etcd_server_proposals_committed_total"),
      );
      assert(delta(before, after, "etcd_disk_wal_fsync_duration_seconds_count") >= 5);
      assertEquals(find(after, "etcd_server_has_leader"), 1);
      assertEquals(find(after, "etcd_debugging_mvcc_keys_total"), 5);
      assertEquals(find(after, "etcd_server_proposals_pending"), 0);
    } finally {
      await m.stop();
    }
  },
});
