// The member as systemd and monitoring see it: sd_notify READY=1 once it serves and
// STOPPING=1 on SIGTERM (a real datagram socket), /health, /version and /metrics over
// plain HTTP on the client port and on --listen-metrics-urls.
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert, rejects } from "node:assert/strict";
import { find, parseExposition } from "../metrics/exposition.ts";
import { ctl, freePort, noEtcdctl, startMember, tempDir } from "./harness.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** A unix datagram socket (python3) that prints each message it receives on a line. */
async function notifySocket(path: string) {
  const child = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound',flush=True)\n" +
      "while True:\n  print(s.recv(4096).decode().replace('\\n',' '),flush=True)",
      path,
    ],
    stdout: "piped",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const waitFor = async (text: string) => {
    const deadline = Date.now() + 20_000;
    while (!lines.some((l) => l.includes(text))) {
      if (Date.now() > deadline) throw new Error(`no ${text} on the notify socket; got ${JSON.stringify(lines)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor("bound");
  return { lines, waitFor, close: () => child.kill("SIGKILL") };
}

Deno.test({
  name: "systemd: READY=1 once serving, STOPPING=1 on SIGTERM",
  ...opts,
  fn: async () => {
    const sock = `${await tempDir()}/notify.sock`;
    const n = await notifySocket(sock);
    try {
      const m = await startMember({ env: { NOTIFY_SOCKET: sock } });
      await n.waitFor("READY=1");
      assert(!n.lines.some((l) => l.includes("STOPPING=1")));
      assertEquals(await m.stop(), 0);
      await n.waitFor("STOPPING=1");
      assertMatch(m.log(), /received signal; shutting down/);
    } finally {
      n.close();
    }
  },
});

Deno.test({
  name: "http: /health, /version and /metrics on client and metrics URLs",
  ignore: noEtcdctl,
  ...opts,
  fn: async () => {
    const metricsPort = await freePort();
    const m = await startMember({ extraArgs: ["--listen-metrics-urls", `http://127.0.0.1:${metricsPort}`] });
    try {
      const scrape = async (name: string) => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const value = find(parseExposition(text).samples, name);
        assert(value !== undefined, `no ${name} in /metrics`);
        return value;
      };
      const commitsBefore = await scrape("etcd_disk_backend_commit_duration_seconds_count");
      await ctl(m.endpoint, "put", "metric", "value");
      // The backend commits the put within its batch interval (100 ms); the bound only stops a broken member.
      let commits = commitsBefore;
      for (const deadline = Date.now() + 10_000; commits === commitsBefore && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 20));
        commits = await scrape("etcd_disk_backend_commit_duration_seconds_count");
      }
      assert(commits > commitsBefore, `backend commits did not move from ${commitsBefore}`);
      for (const port of [m.clientPort, metricsPort]) {
        const health = await fetch(`http://127.0.0.1:${port}/health`);
        assertEquals(health.status, 200);
        assertEquals(await health.json(), { health: "true" });
        const version = await (await fetch(`http://127.0.0.1:${port}/version`)).json();
        assertEquals(version, { etcdserver: "3.4.23", etcdcluster: "3.4.0" });
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        assertMatch(metrics, /^etcd_server_has_leader 1$/m);
        assertMatch(metrics, /^etcd_server_is_leader 1$/m);
        assertMatch(metrics, /^etcd_debugging_mvcc_keys_total 1$/m);
        assertMatch(metrics, /^etcd_mvcc_db_total_size_in_bytes [1-9]\d*$/m);
        assertMatch(metrics, /^etcd_disk_wal_fsync_duration_seconds_count [1-9]\d*$/m);
      }
      const post = await fetch(`http://127.0.0.1:${m.clientPort}/health`, { method: "POST" });
      assertEquals(post.status, 405);
      await post.body?.cancel();
    } finally {
      assertEquals(await m.stop(), 0);
    }
  },
});

Deno.test({
  name: "start failures: port in use, unwritable data dir, data dir in use — one line, non-zero exit",
  ...opts,
  fn: async () => {
    // the client port is taken by a running member
    const first = await startMember();
    try {
      const clash = await startMember({ clientPort: first.clientPort, expectExit: true });
      assertEquals(await clash.stop(), 1);
      assertMatch(clash.log(), new RegExp(`127\\.0\\.0\\.1:${first.clientPort}.*(EADDRINUSE|in use)`, "i"));
      assert(!clash.log().includes("ready to serve client requests"));
      // listeners are bound first: the taken port failed the start before the data dir was made
      await rejects(Deno.stat(clash.dataDir), Deno.errors.NotFound);

      // the same data dir while the first member holds its WAL locks
      const twin = await startMember({ dataDir: first.dataDir, expectExit: true });
      assertEquals(await twin.stop(), 1);
      assertMatch(twin.log(), /another process holds the lock/);
    } finally {
      assertEquals(await first.stop(), 0);
    }
    // a data dir under a regular file cannot be created
    const file = `${await tempDir()}/plain-file`;
    await Deno.writeTextFile(file, "x");
    const bad = await startMember({ dataDir: `${file}/m.etcd`, expectExit: true });
    assertEquals(await bad.stop(), 1);
    assertMatch(bad.log(), /cannot access data directory/);
  },
});

Deno.test({
  name: "config: --config-file with etcd's YAML keys, and ETCD_* variables",
  ignore: noEtcdctl,
  ...opts,
  fn: async () => {
    const dir = await tempDir();
    const [client, peer] = [await freePort(), await freePort()];
    const yaml = [
      "name: fromfile",
      `data-dir: ${dir}/file.etcd`,
      `listen-client-urls: http://127.0.0.1:${client}`,
      `advertise-client-urls: http://127.0.0.1:${client}`,
      `listen-peer-urls: http://127.0.0.1:${peer}`,
      `initial-advertise-peer-urls: http://127.0.0.1:${peer}`,
      `initial-cluster: fromfile=http://127.0.0.1:${peer}`,
      "initial-cluster-token: etcd-cluster-1",
      "initial-cluster-state: new",
      "snapshot-count: 5000",
    ].join("\n");
    await Deno.writeTextFile(`${dir}/etcd.conf.yml`, yaml);
    const m = await startMember({ args: ["--config-file", `${dir}/etcd.conf.yml`], clientPort: client });
    try {
      assertMatch(await ctl(m.endpoint, "member", "list"), /, started, fromfile, /);
      await Deno.stat(`${dir}/file.etcd/member/wal`);
    } finally {
      assertEquals(await m.stop(), 0);
    }

    const [c2, p2] = [await freePort(), await freePort()];
    const env = {
      ETCD_NAME: "fromenv",
      ETCD_DATA_DIR: `${dir}/env.etcd`,
      ETCD_LISTEN_CLIENT_URLS: `http://127.0.0.1:${c2}`,
      ETCD_ADVERTISE_CLIENT_URLS: `http://127.0.0.1:${c2}`,
      ETCD_LISTEN_PEER_URLS: `http://127.0.0.1:${p2}`,
      ETCD_INITIAL_ADVERTISE_PEER_URLS: `http://127.0.0.1:${p2}`,
      ETCD_INITIAL_CLUSTER: `fromenv=http://127.0.0.1:${p2}`,
    };
    const e = await startMember({ args: [], env, clientPort: c2 });
    try {
      assertMatch(await ctl(e.endpoint, "member", "list"), /, started, fromenv, /);
    } finally {
      assertEquals(await e.stop(), 0);
    }
  },
});

Deno.test({
  name: "member and cluster IDs are etcd's, all 64 bits, and survive a restart",
  ...opts,
  fn: async () => {
    // etcd derives them from the advertised peer URLs and the cluster token (neither needs to be listened on)
    const cases = [
      { args: ["--name=default", "--initial-cluster=default=http://localhost:2380"], peer: "http://localhost:2380" },
      {
        args: ["--name=default", "--initial-cluster=default=http://localhost:20001", "--initial-cluster-token=new"],
        peer: "http://localhost:20001",
      },
    ];
    const want = [["8e9e05c52164694d", "cdf818194e3a8c32"], ["ca50e9357181d758", "034f27e83b3bc2ff"]];
    for (const [i, c] of cases.entries()) {
      const dataDir = `${await tempDir()}/ids.etcd`;
      const extraArgs = [`--initial-advertise-peer-urls=${c.peer}`, ...c.args];
      let m = await startMember({ dataDir, extraArgs });
      try {
        for (let restart = 0; restart < 2; restart++) {
          const [member, cluster] = want[i];
          assertEquals(
            await ctl(m.endpoint, "member", "list"),
            `${member}, started, default, ${c.peer}, http://${m.endpoint}, false\n`,
          );
          // decimal in JSON: read from the text, JSON.parse would round it
          const status = await ctl(m.endpoint, "endpoint", "status", "-w", "json");
          assertEquals(/"member_id":(\d+)/.exec(status)![1], BigInt(`0x${member}`).toString());
          assertEquals(/"cluster_id":(\d+)/.exec(status)![1], BigInt(`0x${cluster}`).toString());
          assertEquals(/"leader":(\d+)/.exec(status)![1], BigInt(`0x${member}`).toString());
          assertMatch(m.log(), new RegExp(`"local-member-id":"${member}"`));
          if (restart === 0) {
            assertEquals(await m.stop(), 0);
            m = await startMember({ dataDir, clientPort: m.clientPort, extraArgs });
          }
        }
      } finally {
        await m.stop();
      }
    }
  },
});

Deno.test({
  name: "a client that connects when the member is published is served, not refused",
  ...opts,
  fn: async () => {
    const port = await freePort(), peer = await freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${new URL("../../main.ts", import.meta.url).pathname}`,
        `--data-dir=${await tempDir()}/p.etcd`,
        `--listen-client-urls=http://127.0.0.1:${port}`,
        `--advertise-client-urls=http://127.0.0.1:${port}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=default=http://127.0.0.1:${peer}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      // supervisors and scripts wait for this line, then connect (the log is read on: a closed pipe would kill it)
      let log = "";
      const published = Promise.withResolvers<void>();
      const pump = (async () => {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          log += chunk;
          if (log.includes("published local member to cluster through raft")) published.resolve();
        }
      })();
      await published.promise;
      const r = await fetch(`http://127.0.0.1:${port}/v3/kv/range`, { method: "POST", body: '{"key":"Zm9v"}' });
      assertEquals(r.status, 200, await r.text());
      child.kill("SIGTERM");
      await pump;
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    }
  },
});

/** The TCP ports process `pid` listens on (its sockets in LISTEN state, from /proc). */
async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await Deno.readLink(`/proc/${pid}/fd/${fd.name}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const ports: number[] = [];
  for (const table of ["tcp", "tcp6"]) {
    for (const line of (await Deno.readTextFile(`/proc/${pid}/net/${table}`)).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "0A" && inodes.has(f[9])) ports.push(parseInt(f[1].split(":")[1], 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

Deno.test({
  name: "the member listens on the configured URLs and nothing else",
  ...opts,
  fn: async () => {
    const metrics = await freePort();
    const m = await startMember({ extraArgs: [`--listen-metrics-urls=http://127.0.0.1:${metrics}`] });
    try {
      // HTTP/1.1 traffic too, which once went through a relay port of its own
      assertEquals((await fetch(`http://${m.endpoint}/health`)).status, 200);
      assertEquals(await listeningPorts(m.child.pid), [m.clientPort, m.peerPort, metrics].sort((a, b) => a - b));
    } finally {
      await m.stop();
    }
  },
});
