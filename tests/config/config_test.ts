// parseConfig against etcd 3.4's command-line behaviour (etcdmain/config.go, embed/config.go, pkg/flags).
import assert from "node:assert/strict";
import { defaultConfig, type EtcdConfig, parseCompactionRetention, parseConfig } from "../../server/config.ts";
import { FLAG_BY_NAME } from "../../server/flag_table.ts";
import { urlString } from "../../server/urls.ts";

async function ok(argv: string[], env: Record<string, string> = {}) {
  const r = await parseConfig(argv, env);
  if (!r.ok) throw new Error(`expected success for ${argv.join(" ")}, got exit ${r.exit}: ${r.error}`);
  return r;
}

async function fail(argv: string[], env: Record<string, string> = {}) {
  const r = await parseConfig(argv, env);
  if (r.ok) throw new Error(`expected failure for ${argv.join(" ")}`);
  return r;
}

const urls = (us: URL[]) => us.map(urlString);
const warnings = (r: Awaited<ReturnType<typeof ok>>) => r.notices.filter((n) => n.level === "warn").map((n) => n.msg);

Deno.test("defaults match etcd 3.4", async () => {
  const { config } = await ok([]);
  assert.deepEqual(config, defaultConfig());
  assert.equal(config.name, "default");
  assert.equal(config.dataDir, "default.etcd");
  assert.deepEqual(urls(config.listenClientUrls), ["http://localhost:2379"]);
  assert.deepEqual(urls(config.advertiseClientUrls), ["http://localhost:2379"]);
  assert.deepEqual(urls(config.listenPeerUrls), ["http://localhost:2380"]);
  assert.deepEqual(urls(config.initialAdvertisePeerUrls), ["http://localhost:2380"]);
  assert.deepEqual(config.listenMetricsUrls, []);
  assert.equal(config.initialCluster, "default=http://localhost:2380");
  assert.equal(config.initialClusterToken, "etcd-cluster");
  assert.equal(config.initialClusterState, "new");
  assert.equal(config.snapshotCount, 100000);
  assert.equal(config.heartbeatIntervalMs, 100);
  assert.equal(config.electionTimeoutMs, 1000);
  assert.equal(config.quotaBackendBytes, 0);
  assert.equal(config.maxRequestBytes, 1572864);
  assert.equal(config.maxTxnOps, 128);
  assert.equal(config.maxSnapshots, 5);
  assert.equal(config.maxWals, 5);
  assert.equal(config.autoCompactionMode, "periodic");
  assert.equal(config.autoCompactionRetention, "0");
  assert.deepEqual(config.cors, ["*"]);
  assert.equal(config.enableGrpcGateway, true);
  assert.equal(config.preVote, false);
  assert.equal(config.strictReconfigCheck, true);
  assert.equal(config.logLevel, "info");
  assert.deepEqual(config.logOutputs, ["default"]);
});

Deno.test("an empty data dir defaults to <name>.etcd with etcd's warning", async () => {
  const r = await ok(["--name", "infra1"]);
  assert.equal(r.config.dataDir, "infra1.etcd");
  assert.ok(warnings(r).includes("'data-dir' was empty; using default"));
  assert.ok(!warnings(await ok(["--data-dir", "/d"])).includes("'data-dir' was empty; using default"));
});

Deno.test("flag syntaxes: -f v, --f v, -f=v, --f=v", async () => {
  for (const argv of [["-name", "a"], ["--name", "a"], ["-name=a"], ["--name=a"]]) {
    const { config } = await ok(argv);
    assert.equal(config.name, "a", argv.join(" "));
    // --name alone also names the one-member initial cluster (UpdateDefaultClusterFromName)
    assert.equal(config.initialCluster, "a=http://localhost:2380");
  }
  assert.equal((await ok(["--name", "a", "--name", "b"])).config.name, "b", "last occurrence wins");
});

Deno.test("typed values: numbers, booleans, lists", async () => {
  const { config } = await ok([
    "--snapshot-count=5000",
    "--heartbeat-interval",
    "50",
    "--election-timeout=0x1f4",
    "--quota-backend-bytes=-1",
    "--max-request-bytes=10485760",
    "--max-txn-ops=1_000",
    "--max-snapshots=0",
    "--max-wals=0",
    "--force-new-cluster",
    "--pre-vote=T",
    "--enable-grpc-gateway=0",
    "--cors=http://a.example:80,http://b.example:80,http://a.example:80",
    "--log-outputs=stdout,/tmp/x.log",
    "--log-level=debug",
    "--wal-dir=/w",
    "--initial-cluster-token=tok",
    "--initial-cluster-state=existing",
    "--auto-compaction-mode=revision",
    "--auto-compaction-retention=1000",
  ]);
  assert.equal(config.snapshotCount, 5000);
  assert.equal(config.heartbeatIntervalMs, 50);
  assert.equal(config.electionTimeoutMs, 500);
  assert.equal(config.quotaBackendBytes, -1);
  assert.equal(config.maxRequestBytes, 10485760);
  assert.equal(config.maxTxnOps, 1000);
  assert.equal(config.maxSnapshots, 0);
  assert.equal(config.maxWals, 0);
  assert.equal(config.forceNewCluster, true);
  assert.equal(config.preVote, true);
  assert.equal(config.enableGrpcGateway, false);
  assert.deepEqual(config.cors, ["http://a.example:80", "http://b.example:80"]);
  assert.deepEqual(config.logOutputs, ["stdout", "/tmp/x.log"]);
  assert.equal(config.logLevel, "debug");
  assert.equal(config.walDir, "/w");
  assert.equal(config.initialClusterToken, "tok");
  assert.equal(config.initialClusterState, "existing");
  assert.equal(config.autoCompactionMode, "revision");
  assert.equal(config.autoCompactionRetention, "1000");
});

Deno.test("URL lists are trimmed, de-duplicated and sorted like types.NewURLs", async () => {
  const { config } = await ok([
    "--listen-client-urls=http://127.0.0.2:2379, http://127.0.0.1:2379,http://127.0.0.1:2379",
    "--advertise-client-urls=http://b:2379,http://a:2379",
    "--listen-peer-urls=http://[::1]:2380",
    "--initial-advertise-peer-urls=http://[::1]:2380",
    "--initial-cluster=default=http://[::1]:2380",
    "--listen-metrics-urls=http://0.0.0.0:2381",
  ]);
  assert.deepEqual(urls(config.listenClientUrls), ["http://127.0.0.1:2379", "http://127.0.0.2:2379"]);
  assert.deepEqual(urls(config.advertiseClientUrls), ["http://a:2379", "http://b:2379"]);
  assert.deepEqual(urls(config.listenPeerUrls), ["http://[::1]:2380"]);
  assert.deepEqual(urls(config.listenMetricsUrls), ["http://0.0.0.0:2381"]);
});

Deno.test("--name with several advertise peer URLs builds the default initial cluster from all of them", async () => {
  const { config } = await ok(["--name=n1", "--initial-advertise-peer-urls=http://10.0.0.2:2380,http://10.0.0.1:2380"]);
  assert.equal(config.initialCluster, "n1=http://10.0.0.1:2380,n1=http://10.0.0.2:2380");
});

Deno.test("ETCD_* environment variables fill flags that were not given", async () => {
  const r = await ok([], { ETCD_NAME: "envname", ETCD_SNAPSHOT_COUNT: "7", ETCD_PRE_VOTE: "true", PATH: "/bin" });
  assert.equal(r.config.name, "envname");
  assert.equal(r.config.snapshotCount, 7);
  assert.equal(r.config.preVote, true);
  assert.ok(
    r.notices.some((n) => n.level === "info" && n.msg === "recognized and used environment variable ETCD_NAME=envname"),
  );
  // a flag and the environment combine when they name different settings
  const both = await ok(["--snapshot-count=9"], { ETCD_NAME: "envname" });
  assert.equal(both.config.name, "envname");
  assert.equal(both.config.snapshotCount, 9);
});

Deno.test("an env var shadowed by its flag is an error, as in etcd", async () => {
  const r = await fail(["--name=flag"], { ETCD_NAME: "env" });
  assert.equal(r.exit, 1);
  assert.equal(
    r.error,
    'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)',
  );
});

Deno.test("unknown ETCD_* variables are warned about; bad env values are errors", async () => {
  assert.ok(
    warnings(await ok([], { ETCD_NO_SUCH_THING: "1" })).includes(
      "unrecognized environment variable ETCD_NO_SUCH_THING=1",
    ),
  );
  const r = await fail([], { ETCD_SNAPSHOT_COUNT: "many" });
  assert.equal(r.exit, 1);
  assert.equal(r.error, 'invalid value "many" for ETCD_SNAPSHOT_COUNT: parse error');
});

function writeYaml(text: string): string {
  const path = Deno.makeTempFileSync({ suffix: ".yml" });
  Deno.writeTextFileSync(path, text);
  return path;
}

const SAMPLE = `# etcd.conf.yml.sample style
name: 'node1'
data-dir: /var/lib/etcd/node1
wal-dir:
snapshot-count: 10000
heartbeat-interval: 50
election-timeout: 500
quota-backend-bytes: 8589934592
listen-peer-urls: 'http://172.16.7.16:9001'
listen-client-urls: 'http://172.16.7.16:9002,http://127.0.0.1:9002'
max-snapshots: 3
max-wals: 4
cors:
initial-advertise-peer-urls: 'http://172.16.7.16:9001'
advertise-client-urls: 'http://172.16.7.16:9002'
initial-cluster: node1=http://172.16.7.16:9001,node2=http://172.16.7.16:9003,node3=http://172.16.7.16:9005
initial-cluster-token: 'etcd-cluster-1'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-v2: false
enable-pprof: true
proxy: 'off'
client-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
peer-transport-security:
  cert-file:
  client-cert-auth: false
debug: false
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
`;

Deno.test("--config-file reads etcd's YAML keys", async () => {
  const r = await ok(["--config-file", writeYaml(SAMPLE)]);
  const c: EtcdConfig = r.config;
  assert.equal(c.name, "node1");
  assert.equal(c.strictReconfigCheck, false);
  assert.equal(c.dataDir, "/var/lib/etcd/node1");
  assert.equal(c.walDir, "");
  assert.equal(c.snapshotCount, 10000);
  assert.equal(c.heartbeatIntervalMs, 50);
  assert.equal(c.electionTimeoutMs, 500);
  assert.equal(c.quotaBackendBytes, 8589934592);
  assert.deepEqual(urls(c.listenClientUrls), ["http://127.0.0.1:9002", "http://172.16.7.16:9002"]);
  assert.deepEqual(urls(c.advertiseClientUrls), ["http://172.16.7.16:9002"]);
  assert.deepEqual(urls(c.listenPeerUrls), ["http://172.16.7.16:9001"]);
  assert.equal(c.maxSnapshots, 3);
  assert.equal(c.maxWals, 4);
  assert.equal(c.initialClusterToken, "etcd-cluster-1");
  assert.deepEqual(c.logOutputs, ["stderr"]);
  assert.equal(c.autoCompactionRetention, "1");
  assert.ok(r.notices.some((n) => n.msg.startsWith("loaded server configuration, other configuration command line")));
  assert.ok(warnings(r).includes("flag --enable-pprof is not supported by detcd yet; ignored"));
});

Deno.test("with a config file, other flags and ETCD_* variables are ignored", async () => {
  const path = writeYaml("name: fromfile\ninitial-cluster: fromfile=http://localhost:2380\n");
  const r = await ok(["--name=fromflag", `--config-file=${path}`, "--snapshot-count=1"], { ETCD_NAME: "fromenv" });
  assert.equal(r.config.name, "fromfile");
  assert.equal(r.config.snapshotCount, 100000);
  // ETCD_CONFIG_FILE selects the file too
  assert.equal((await ok([], { ETCD_CONFIG_FILE: path, ETCD_SNAPSHOT_COUNT: "3" })).config.name, "fromfile");
});

Deno.test("config file: client-transport-security's cert-file and key-file serve https:// client URLs", async () => {
  const yaml = "listen-client-urls: https://127.0.0.1:2379\nadvertise-client-urls: https://127.0.0.1:2379\n" +
    "client-transport-security:\n  cert-file: /c.pem\n  key-file: /k.pem\n  client-cert-auth: false\n  other: 1\n";
  const r = await ok(["--config-file", writeYaml(yaml)]);
  assert.deepEqual([r.config.certFile, r.config.keyFile], ["/c.pem", "/k.pem"]);
  assert.ok(warnings(r).includes('unrecognized config file key "client-transport-security.other"; ignored'));
});

Deno.test("config file: listen-client-urls alone keeps the default advertise URL (etcd's file rule)", async () => {
  const { config } = await ok(["--config-file", writeYaml("listen-client-urls: http://127.0.0.1:2379\n")]);
  assert.deepEqual(urls(config.advertiseClientUrls), ["http://localhost:2379"]);
});

Deno.test("config file errors", async () => {
  const cases: [string, RegExp][] = [
    ["snapshot-count: lots\n", /config file key "snapshot-count": invalid value "lots": parse error/],
    ["listen-client-urls: ftp://x:1\n", /URL scheme must be http, https, unix, or unixs: ftp:\/\/x:1/],
    [
      "client-transport-security:\n  client-cert-auth: true\n",
      /--client-cert-auth is not supported: client certificate authentication is not implemented in detcd/,
    ],
    ["peer-transport-security:\n  cert-file: /p.pem\n", /--peer-cert-file is not supported: TLS on peer URLs/],
    ["client-transport-security: yes\n", /config file key "client-transport-security": expected a mapping/],
    ["initial-cluster-state: maybe\n", /invalid value "maybe": invalid value/],
    ["election-timeout: 100\n", /should be at least as 5 times as --heartbeat-interval/],
    ["name: [\n", /error parsing config file/],
    ["- a\n- b\n", /is not a YAML mapping/],
  ];
  for (const [yaml, re] of cases) {
    const r = await fail(["--config-file", writeYaml(yaml)]);
    assert.equal(r.exit, 1, yaml);
    assert.match(r.error!, re, yaml);
  }
  const missing = await fail(["--config-file=/nonexistent/etcd.yml"]);
  assert.equal(missing.exit, 1);
  assert.match(missing.error!, /nonexistent/);
  assert.ok(
    warnings(await ok(["--config-file", writeYaml("no-such-key: 1\n")])).includes(
      'unrecognized config file key "no-such-key"; ignored',
    ),
  );
});

Deno.test("unsupported etcd flags: harmless ones warn, surprising ones are refused unless at their default", async () => {
  const r = await ok([
    "--grpc-keepalive-interval=5s",
    "--auth-token=jwt",
    "--enable-v2=false",
    "--proxy=off",
    "--metrics=extensive",
    "--unsafe-no-fsync",
  ]);
  for (const f of ["grpc-keepalive-interval", "auth-token", "metrics", "unsafe-no-fsync"]) {
    assert.ok(warnings(r).includes(`flag --${f} is not supported by detcd yet; ignored`), f);
  }
  // values equal to etcd's defaults change nothing, so they pass silently
  assert.deepEqual(
    warnings(await ok(["--enable-v2=false", "--proxy=off", "--strict-reconfig-check", "--metrics=basic"])),
    [
      "'data-dir' was empty; using default",
    ],
  );
  assert.ok(warnings(await ok(["-v"])).includes('flag "-v" is no longer supported - ignoring.'));
  const refused: [string, RegExp][] = [
    ["--cert-file=/c.pem", /^--cert-file and --key-file must be given together$/],
    [
      "--listen-client-urls=https://127.0.0.1:2379",
      /^TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:2379 with HTTPS scheme$/,
    ],
    [
      "--listen-metrics-urls=https://127.0.0.1:2381",
      /^TLS key\/cert \(--cert-file, --key-file\) must be provided for metrics url https:\/\/127\.0\.0\.1:2381 with HTTPS scheme$/,
    ],
    [
      "--client-cert-auth",
      /^--client-cert-auth is not supported: client certificate authentication is not implemented/,
    ],
    ["--trusted-ca-file=/ca.pem", /^--trusted-ca-file is not supported: client certificate authentication/],
    ["--auto-tls", /^--auto-tls is not supported: generated certificates are not implemented in detcd/],
    ["--peer-auto-tls=true", /^--peer-auto-tls is not supported: TLS on peer URLs is not implemented in detcd$/],
    ["--proxy=on", /^--proxy is not supported: the v2 proxy/],
    ["--discovery=https://discovery.etcd.io/x", /^--discovery is not supported: discovery/],
    ["--enable-v2", /^--enable-v2 is not supported: the v2 API/],
  ];
  for (const [flag, re] of refused) {
    const e = await fail([flag]);
    assert.equal(e.exit, 1, flag);
    assert.match(e.error!, re, flag);
  }
  assert.match(
    (await fail([], { ETCD_CERT_FILE: "/c.pem" })).error!,
    /--cert-file and --key-file must be given together/,
  );
});

Deno.test("Go flag-package errors exit 2 with Go's wording", async () => {
  const cases: [string[], string][] = [
    [["--foo"], "flag provided but not defined: -foo"],
    [["-foo=1"], "flag provided but not defined: -foo"],
    [["--name"], "flag needs an argument: -name"],
    [["---name=x"], "bad flag syntax: ---name=x"],
    [["--snapshot-count=abc"], 'invalid value "abc" for flag -snapshot-count: parse error'],
    [["--snapshot-count=-1"], 'invalid value "-1" for flag -snapshot-count: parse error'],
    [["--heartbeat-interval=1.5"], 'invalid value "1.5" for flag -heartbeat-interval: parse error'],
    [["--force-new-cluster=maybe"], 'invalid boolean value "maybe" for -force-new-cluster: parse error'],
    [["--initial-cluster-state=foo"], 'invalid value "foo" for flag -initial-cluster-state: invalid value'],
    [["--grpc-keepalive-interval=5"], 'invalid value "5" for flag -grpc-keepalive-interval: parse error'],
    [
      ["--listen-client-urls=ftp://x:1"],
      'invalid value "ftp://x:1" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: ftp://x:1',
    ],
    [
      ["--listen-peer-urls=http://localhost"],
      'invalid value "http://localhost" for flag -listen-peer-urls: URL address does not have the form "host:port": http://localhost',
    ],
    [
      ["--advertise-client-urls=http://a:1/p"],
      'invalid value "http://a:1/p" for flag -advertise-client-urls: URL must not contain a path: http://a:1/p',
    ],
  ];
  for (const [argv, msg] of cases) {
    const r = await fail(argv);
    assert.equal(r.exit, 2, argv.join(" "));
    assert.equal(r.error, msg);
  }
});

Deno.test("etcd's verification errors exit 1", async () => {
  const cases: [string[], string][] = [
    [["extra"], "'extra' is not a valid flag"],
    [["--pre-vote", "false"], "'false' is not a valid flag"],
    [
      ["--listen-client-urls=http://127.0.0.1:2379"],
      "--advertise-client-urls is required when --listen-client-urls is set explicitly",
    ],
    [
      ["--listen-client-urls=http://example.com:2379", "--advertise-client-urls=http://a:1"],
      "expected IP in URL for binding (http://example.com:2379)",
    ],
    [
      ["--election-timeout=100"],
      "--election-timeout[100ms] should be at least as 5 times as --heartbeat-interval[100ms]",
    ],
    [
      ["--heartbeat-interval=300"],
      "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]",
    ],
    [["--heartbeat-interval=0"], "--heartbeat-interval must be >0 (set to 0ms)"],
    [["--election-timeout=60000"], "--election-timeout[60000ms] is too long, and should be set less than 50000ms"],
    [["--auto-compaction-mode=x"], 'unknown auto-compaction-mode "x"'],
    [
      ["--auto-compaction-mode=revision", "--auto-compaction-retention=1h"],
      'invalid auto compaction retention "1h": want a revision count',
    ],
    [
      ["--auto-compaction-retention=soon"],
      'invalid auto compaction retention "soon": want hours or a duration like "30m"',
    ],
    [
      ["--name=zz", "--initial-cluster=a=http://localhost:2380"],
      'couldn\'t find local name "zz" in the initial cluster configuration',
    ],
    [["--initial-cluster=default"], 'invalid --initial-cluster entry "default": want name=url'],
    [["--log-level=verbose"], 'unknown log level "verbose"; only supports debug, info, warn, error, panic, or fatal'],
    [["--logger=glog"], "unknown logger option glog"],
    [
      ["--experimental-enable-lease-checkpoint-persist"],
      "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint",
    ],
  ];
  for (const [argv, msg] of cases) {
    const r = await fail(argv);
    assert.equal(r.exit, 1, argv.join(" "));
    assert.equal(r.error, msg);
  }
});

Deno.test("deprecated logging flags map onto the new ones", async () => {
  assert.equal((await ok(["--debug"])).config.logLevel, "debug");
  assert.deepEqual((await ok(["--log-output=stdout"])).config.logOutputs, ["stdout"]);
  assert.deepEqual((await ok(["--log-output=stdout", "--log-outputs=stderr"])).config.logOutputs, ["stderr"]);
  assert.ok(
    warnings(await ok(["--logger=capnslog"])).includes("--logger=capnslog is not supported by detcd; using zap"),
  );
});

Deno.test("--version and --help print and exit 0", async () => {
  const v = await fail(["--version"]);
  assert.equal(v.exit, 0);
  assert.match(
    v.stdout!,
    /^detcd Version: \d+\.\d+\.\d+\netcd Version: 3\.4\.\d+ \(compatible\)\netcd API Version: 3\.4\n/,
  );
  assert.match(v.stdout!, /Go OS\/Arch: \w+\/\w+\n$/);
  assert.equal((await fail(["-version"])).exit, 0);
  assert.ok((await ok(["--version=false"])).config);
  for (const h of ["-h", "--help", "-help"]) {
    const r = await fail(["--name=x", h]);
    assert.equal(r.exit, 0);
    assert.match(r.stdout!, /--name 'default'\n {4}Human-readable name for this member\./);
    assert.match(r.stdout!, /--initial-cluster-state 'new'/);
    assert.match(r.stdout!, /--listen-client-urls 'http:\/\/localhost:2379'/);
    assert.match(r.stdout!, /--cert-file ''\n {4}Path to the client server TLS cert file\./);
    assert.ok(!r.stdout!.includes("--client-cert-auth 'false'"), "unsupported flags are not documented as options");
    assert.match(r.stdout!, /--client-cert-auth/);
  }
});

function etcdHelp(): string | undefined {
  try {
    const out = new Deno.Command("etcd", { args: ["--help"], stdout: "piped", stderr: "null" }).outputSync();
    return new TextDecoder().decode(out.stdout);
  } catch {
    return undefined; // the reference etcd is not installed
  }
}

const referenceHelp = etcdHelp();

Deno.test({
  name: "every flag of the installed etcd is known to detcd",
  ignore: referenceHelp === undefined,
  async fn() {
    const names = [...referenceHelp!.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((m) => m[1]);
    assert.ok(names.length >= 80, `parsed ${names.length} flags from etcd --help`);
    for (const n of names) {
      assert.ok(FLAG_BY_NAME.has(n), `etcd flag --${n} is unknown to detcd`);
      const r = await parseConfig([`--${n}=x`], {});
      assert.ok(r.ok || !/not defined/.test(r.error ?? ""), n);
    }
  },
});

Deno.test("auto compaction retention parses like etcd's", () => {
  assert.equal(parseCompactionRetention("periodic", "1"), 3600_000);
  assert.equal(parseCompactionRetention("periodic", "1h30m"), 5400_000);
  assert.equal(parseCompactionRetention("periodic", "90s"), 90_000);
  assert.equal(parseCompactionRetention("periodic", "1.5h"), 5400_000);
  assert.equal(parseCompactionRetention("revision", "1000"), 1000);
  assert.throws(() => parseCompactionRetention("periodic", "-1"), /invalid auto compaction retention/);
  assert.throws(() => parseCompactionRetention("periodic", "1x"), /invalid auto compaction retention/);
  assert.throws(() => parseCompactionRetention("revision", "1h"), /want a revision count/);
});

Deno.test("config: DETCD_LEASE_CHECKPOINT_INTERVAL sets etcd's LeaseCheckpointInterval (no flag in 3.4), 5 min else", async () => {
  assert.equal((await ok([])).config.leaseCheckpointIntervalMs, 300_000);
  assert.equal((await ok([], { DETCD_LEASE_CHECKPOINT_INTERVAL: "1.5s" })).config.leaseCheckpointIntervalMs, 1500);
  const r = await parseConfig([], { DETCD_LEASE_CHECKPOINT_INTERVAL: "soon" });
  assert.equal(r.ok, false);
});
