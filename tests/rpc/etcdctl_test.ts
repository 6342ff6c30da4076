// Real-client compatibility: etcdctl (Go clientv3 + grpc-go) against the fake KV. Skipped without etcdctl.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startServer } from "./fixtures/server.ts";

const etcdctl = (() => {
  try {
    return new Deno.Command("etcdctl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

async function run(port: number, ...args: string[]) {
  const out = await new Deno.Command("etcdctl", {
    args: [`--endpoints=127.0.0.1:${port}`, "--command-timeout=5s", ...args],
    env: { ETCDCTL_API: "3" },
  }).output();
  return {
    ok: out.success,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "etcdctl: put, get, get -w json, del and an etcd error",
  ignore: !etcdctl,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const srv = await startServer();
    try {
      assertEquals((await run(srv.port, "put", "foo", "bar")).stdout, "OK\n");
      assertEquals((await run(srv.port, "get", "foo")).stdout, "foo\nbar\n");
      const json = JSON.parse((await run(srv.port, "get", "foo", "-w", "json")).stdout);
      assertEquals(json.kvs[0].value, btoa("bar"));
      assertEquals(json.header.revision, 2);
      assertEquals((await run(srv.port, "del", "foo")).stdout, "1\n");
      const err = await run(srv.port, "txn");
      assert(!err.ok);
      const missing = await run(srv.port, "get", "");
      assert(!missing.ok && missing.stderr.includes("etcdserver: key is not provided"), missing.stderr);
    } finally {
      await srv.close();
    }
  },
});
