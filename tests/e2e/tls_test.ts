// Client TLS: an https:// --listen-client-urls URL served with --cert-file and --key-file (fixtures/tls: a test CA and
// a certificate it signed for 127.0.0.1 and localhost, valid for a century). etcdctl's gRPC, the JSON gateway and the
// plain endpoints go over TLS, HTTP/2 or HTTP/1.1 as ALPN picks; a plain-text client gets no answer and changes nothing.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import {
  ctl,
  etcdctl,
  freePort,
  noEtcdctl,
  repoRoot,
  spawnEtcdctl,
  startMember,
  tempDir,
  waitUntil,
} from "./harness.ts";
import * as reference from "./reference.ts";

const opts = { ignore: noEtcdctl, sanitizeResources: false, sanitizeOps: false };
const FIXTURES = `${repoRoot}tests/e2e/fixtures/tls`;
const CA = `${FIXTURES}/ca.crt`;

async function flags(client: number, extra: string[]): Promise<string[]> {
  const peer = await freePort();
  return [
    "--name=m1",
    `--data-dir=${await tempDir()}/m1.etcd`,
    `--listen-client-urls=https://127.0.0.1:${client}`,
    `--advertise-client-urls=https://127.0.0.1:${client}`,
    `--listen-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-cluster=m1=http://127.0.0.1:${peer}`,
    ...extra,
  ];
}

const CERT = [`--cert-file=${FIXTURES}/server.crt`, `--key-file=${FIXTURES}/server.key`];

Deno.test({
  name:
    "tls: an https:// client URL serves etcdctl, watches, the gateway and /health over TLS; plain text gets nothing",
  ...opts,
  fn: async () => {
    const [client, metrics] = [await freePort(), await freePort()];
    const member = await startMember({
      clientPort: client,
      args: await flags(client, [...CERT, `--listen-metrics-urls=https://127.0.0.1:${metrics}`]),
    });
    const ep = `https://127.0.0.1:${client}`;
    const https = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(CA)] });
    const http1 = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(CA)], http2: false });
    try {
      assertMatch(member.log(), /"msg":"serving client traffic securely","address":"127\.0\.0\.1:\d+"/);
      assertEquals(await ctl(ep, `--cacert=${CA}`, "put", "k", "v"), "OK\n");
      assertEquals(await ctl(ep, `--cacert=${CA}`, "get", "k", "--print-value-only"), "v\n");
      // a stream over TLS: a watch from the first revision sees the put
      const watch = spawnEtcdctl(ep, [`--cacert=${CA}`, "watch", "k", "--rev=1"]);
      await waitUntil(() => watch.stdout() === "PUT\nk\nv\n", () => `the watch over TLS: ${watch.stdout()}`);
      await watch.stop();

      // the JSON gateway and /health, over HTTP/2 (ALPN h2) and HTTP/1.1
      const health = await fetch(`${ep}/health`, { client: https });
      assertEquals([health.status, await health.json()], [200, { health: "true" }]);
      const range = await fetch(`${ep}/v3/kv/range`, { client: http1, method: "POST", body: '{"key":"aw=="}' });
      assertEquals((await range.json()).kvs[0].value, btoa("v"));
      // the metrics URL serves TLS with the same certificate
      const scrape = await (await fetch(`https://127.0.0.1:${metrics}/metrics`, { client: http1 })).text();
      assertMatch(scrape, /^etcd_server_has_leader 1$/m);

      // plain text to the TLS port: no answer, and the server goes on
      const plain = await etcdctl(`127.0.0.1:${client}`, [
        "--dial-timeout=1s",
        "--command-timeout=2s",
        "put",
        "k",
        "x",
      ]);
      assert(plain.code !== 0, plain.stdout);
      await fetch(`http://127.0.0.1:${client}/health`).then((r) => r.body?.cancel(), () => {});
      // a client that does not trust the CA refuses the server's certificate (etcdctl says only that it timed out)
      const untrusted = await etcdctl(ep, ["--dial-timeout=1s", "--command-timeout=2s", "get", "k"]);
      assert(untrusted.code !== 0, untrusted.stdout);
      assertEquals(await ctl(ep, `--cacert=${CA}`, "get", "k", "--print-value-only"), "v\n");
    } finally {
      https.close();
      http1.close();
      await member.stop();
    }
  },
});

Deno.test({
  name: "tls: an https:// client URL without a certificate, or with one that cannot be read, stops the start",
  ...opts,
  fn: async () => {
    const client = await freePort();
    const none = await startMember({ clientPort: client, args: await flags(client, []), expectExit: true });
    assertEquals(await none.stop(), 1);
    assertMatch(
      none.log(),
      /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:\d+ with HTTPS scheme/,
    );
    const missing = await startMember({
      clientPort: client,
      args: await flags(client, [`--cert-file=${FIXTURES}/missing.crt`, `--key-file=${FIXTURES}/server.key`]),
      expectExit: true,
    });
    assertEquals(await missing.stop(), 1);
    assertMatch(missing.log(), /cannot load TLS key\/cert/);
    // a metrics URL over https:// needs them too
    const metrics = await startMember({
      clientPort: client,
      args: [
        ...(await flags(client, [])).map((f) => f.replace("https://", "http://")),
        `--listen-metrics-urls=https://127.0.0.1:${client + 1}`,
      ],
      expectExit: true,
    });
    assertEquals(await metrics.stop(), 1);
    assertMatch(metrics.log(), /TLS key\/cert \(--cert-file, --key-file\) must be provided for metrics url https:\/\//);
  },
});

Deno.test({
  name: "tls differential: the same etcdctl session over TLS against Debian's etcd and detcd answers the same",
  ...opts,
  ignore: opts.ignore || reference.opts.ignore,
  fn: async () => {
    // both with the same certificate, and the same advertised peer URL (neither listens on it): the same IDs
    const args = async (client: number) => [
      ...(await flags(client, CERT)).filter((f) => !/^--(initial-advertise-peer-urls|initial-cluster)=/.test(f)),
      "--initial-advertise-peer-urls=http://localhost:2380",
      "--initial-cluster=m1=http://localhost:2380",
    ];
    const [refClient, mineClient] = [await freePort(), await freePort()];
    const [ref, mine] = [`https://127.0.0.1:${refClient}`, `https://127.0.0.1:${mineClient}`];
    const stopRef = reference.startReferenceMember(await args(refClient));
    const member = await startMember({ clientPort: mineClient, args: await args(mineClient) });
    try {
      await waitUntil(
        async () => (await etcdctl(ref, [`--cacert=${CA}`, "endpoint", "health"])).code === 0,
        () => "the reference etcd to serve over TLS",
      );
      for (const [step, input] of reference.ETCDCTL_SESSION.slice(0, 34)) {
        const args = [`--cacert=${CA}`, ...step];
        assertEquals(
          await reference.observe(mine, args, input),
          await reference.observe(ref, args, input),
          `etcdctl ${step.join(" ")}`,
        );
      }
    } finally {
      await stopRef();
      await member.stop();
    }
  },
});
