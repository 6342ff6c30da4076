// Benchmark target for scripts/rpc_bench.sh: the client-port transport with the in-memory fake KV from the tests.
// Usage: rpc_bench_server.ts <port> <payload dir> [exit after N calls]. Writes gRPC-framed RangeRequest/PutRequest
// bodies for h2load into the payload dir, then prints "ready". Exiting after N calls lets --cpu-prof write its
// profile before h2load's closing GOAWAY can crash Deno's node:http2 (denoland/deno#36788).

import { create, toBinary } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { serveClientUrl } from "../rpc/listener.ts";
import type { ServiceRegistration, ServiceRegistry } from "../rpc/services.ts";
import { fakeServices } from "../tests/rpc/fixtures/fake_services.ts";
import { frame } from "../tests/rpc/fixtures/server.ts";

const [port, dir, exitAfter] = Deno.args;
const enc = (s: string) => new TextEncoder().encode(s);
const range = toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: enc("foo") }));
const put = toBinary(PutRequestSchema, create(PutRequestSchema, { key: enc("foo"), value: enc("bar-".repeat(16)) }));
Deno.writeFileSync(`${dir}/range.bin`, frame(range));
Deno.writeFileSync(`${dir}/put.bin`, frame(put));

let calls = 0;
const countCalls = (registry: ServiceRegistry): ServiceRegistry =>
  registry.map(({ service, impl }): ServiceRegistration => ({
    service,
    impl: Object.fromEntries(
      Object.entries(impl).map(([name, fn]) => [name, (...args: unknown[]) => {
        if (++calls === Number(exitAfter)) setTimeout(() => Deno.exit(0), 0);
        return (fn as (...a: unknown[]) => unknown).apply(impl, args);
      }]),
    ) as unknown as ServiceRegistration["impl"],
  }));

const server = await serveClientUrl(new URL(`http://127.0.0.1:${port}`), {
  services: exitAfter ? countCalls(fakeServices()) : fakeServices(),
  maxRecvBytes: 2 * 1024 * 1024,
});
// Start with the key present so Range returns a KeyValue, as against etcd.
await fetch(`http://127.0.0.1:${server.port}/v3/kv/put`, { method: "POST", body: '{"key":"Zm9v","value":"YmFy"}' })
  .then((r) => r.body?.cancel());
console.log("ready");
const stop = async () => {
  await server.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
