// The server configuration and how it is built from argv, ETCD_* variables or --config-file, following
// etcdmain/config.go and embed/config.go (etcd 3.4): same defaults, precedence, and validation wording.
import { FLAG_BY_NAME } from "./flag_table.ts";
import { applyEnv, FlagError, parseBool, parseFlagArgs, parseGoDuration, parseGoInt } from "./flags.ts";
import { readConfigFile } from "./config_file.ts";
import { isLogLevel, type LogFields, type LogLevel } from "./logger.ts";
import { checkBindUrls, parseUrls, urlString } from "./urls.ts";
import { usageText, versionText } from "./usage.ts";

export interface EtcdConfig {
  name: string;
  dataDir: string;
  /** "" means <dataDir>/member/wal. */
  walDir: string;
  listenClientUrls: URL[];
  advertiseClientUrls: URL[];
  listenPeerUrls: URL[];
  initialAdvertisePeerUrls: URL[];
  listenMetricsUrls: URL[];
  /** "name=url,name=url"; see parseInitialCluster. */
  initialCluster: string;
  initialClusterToken: string;
  initialClusterState: "new" | "existing";
  snapshotCount: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** 0 = default 2 GiB; negative disables the quota (etcd semantics). */
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  /** 0 = unlimited. */
  maxSnapshots: number;
  /** 0 = unlimited. */
  maxWals: number;
  autoCompactionMode: "periodic" | "revision";
  /** "0" = off; see parseCompactionRetention. */
  autoCompactionRetention: string;
  /** Allowed CORS origins; ["*"] allows all. */
  cors: string[];
  forceNewCluster: boolean;
  enableGrpcGateway: boolean;
  logLevel: LogLevel;
  /** "default" (= stderr), "stderr", "stdout", or file paths. */
  logOutputs: string[];
  preVote: boolean;
  /** --strict-reconfig-check: refuse membership changes that would lose the quorum of started members. */
  strictReconfigCheck: boolean;
  /** --initial-election-tick-advance: once its peers answer, a starting member waits only two ticks for a leader. */
  initialElectionTickAdvance: boolean;
  /** --experimental-initial-corrupt-check: compare HashKV with the peers' before serving clients. */
  initialCorruptCheck: boolean;
  /** --experimental-corrupt-check-time: the leader's HashKV comparison period (0: never). */
  corruptCheckTimeMs: number;
  /** --experimental-watch-progress-notify-interval: how often idle watchers that asked for it get progress. */
  watchProgressNotifyIntervalMs: number;
  /** --experimental-enable-lease-checkpoint */
  leaseCheckpoint: boolean;
  /** --experimental-enable-lease-checkpoint-persist */
  leaseCheckpointPersist: boolean;
  /**
   * How often the leader checkpoints long leases (etcd's LeaseCheckpointInterval, 5 min, which 3.4 sets from no flag;
   * its integration tests change it, detcd's through DETCD_LEASE_CHECKPOINT_INTERVAL).
   */
  leaseCheckpointIntervalMs: number;
  /** --cert-file, --key-file: the certificate (PEM, its chain after it) and key https:// client URLs serve. */
  certFile: string;
  keyFile: string;
}

/** A line main logs once the logger exists (etcd logs these through its logger too). */
export interface ConfigNotice {
  level: "info" | "warn";
  msg: string;
  fields?: LogFields;
}

export type ParseConfigResult =
  | { ok: true; config: EtcdConfig; notices: ConfigNotice[] }
  /** exit 0: print stdout (--help, --version). exit 2: Go flag syntax error. exit 1: invalid configuration. */
  | { ok: false; exit: 0 | 1 | 2; stdout?: string; error?: string };

export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
const MAX_ELECTION_MS = 50000;
const DEFAULT_INITIAL_CLUSTER = "default=http://localhost:2380";

export function defaultConfig(): EtcdConfig {
  return {
    name: "default",
    dataDir: "default.etcd",
    walDir: "",
    listenClientUrls: parseUrls("http://localhost:2379"),
    advertiseClientUrls: parseUrls("http://localhost:2379"),
    listenPeerUrls: parseUrls("http://localhost:2380"),
    initialAdvertisePeerUrls: parseUrls("http://localhost:2380"),
    listenMetricsUrls: [],
    certFile: "",
    keyFile: "",
    initialCluster: DEFAULT_INITIAL_CLUSTER,
    initialClusterToken: "etcd-cluster",
    initialClusterState: "new",
    snapshotCount: 100000,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    quotaBackendBytes: 0,
    maxRequestBytes: 1572864,
    maxTxnOps: 128,
    maxSnapshots: 5,
    maxWals: 5,
    autoCompactionMode: "periodic",
    autoCompactionRetention: "0",
    cors: ["*"],
    forceNewCluster: false,
    enableGrpcGateway: true,
    logLevel: "info",
    logOutputs: ["default"],
    preVote: false,
    strictReconfigCheck: true,
    initialElectionTickAdvance: true,
    initialCorruptCheck: false,
    corruptCheckTimeMs: 0,
    watchProgressNotifyIntervalMs: 10 * 60_000,
    leaseCheckpoint: false,
    leaseCheckpointPersist: false,
    leaseCheckpointIntervalMs: 5 * 60_000,
  };
}

/** Splits a comma list like etcd's UniqueStrings: duplicates dropped, first occurrence order kept. */
function uniqueList(s: string): string[] {
  return [...new Set(s.split(","))];
}

/** Applies one already syntax-checked value of an implemented flag/key. */
function apply(cfg: EtcdConfig, name: string, v: string): void {
  const num = () => parseGoInt(v, true)!;
  const bool = () => parseBool(v)!;
  // etcd keeps the default when a URL flag is set to "" (its UniqueURLs allows "" as an exception).
  const urls = (def: URL[]) => v === "" ? def : parseUrls(v);
  switch (name) {
    case "name":
      cfg.name = v;
      break;
    case "data-dir":
      cfg.dataDir = v;
      break;
    case "wal-dir":
      cfg.walDir = v;
      break;
    case "listen-client-urls":
      cfg.listenClientUrls = urls(cfg.listenClientUrls);
      break;
    case "advertise-client-urls":
      cfg.advertiseClientUrls = urls(cfg.advertiseClientUrls);
      break;
    case "listen-peer-urls":
      cfg.listenPeerUrls = urls(cfg.listenPeerUrls);
      break;
    case "initial-advertise-peer-urls":
      cfg.initialAdvertisePeerUrls = urls(cfg.initialAdvertisePeerUrls);
      break;
    case "listen-metrics-urls":
      cfg.listenMetricsUrls = urls(cfg.listenMetricsUrls);
      break;
    case "initial-cluster":
      cfg.initialCluster = v;
      break;
    case "cert-file":
      cfg.certFile = v;
      break;
    case "key-file":
      cfg.keyFile = v;
      break;
    case "initial-cluster-token":
      cfg.initialClusterToken = v;
      break;
    case "initial-cluster-state":
      cfg.initialClusterState = v as EtcdConfig["initialClusterState"];
      break;
    case "snapshot-count":
      cfg.snapshotCount = num();
      break;
    case "heartbeat-interval":
      cfg.heartbeatIntervalMs = num();
      break;
    case "election-timeout":
      cfg.electionTimeoutMs = num();
      break;
    case "quota-backend-bytes":
      cfg.quotaBackendBytes = num();
      break;
    case "max-request-bytes":
      cfg.maxRequestBytes = num();
      break;
    case "max-txn-ops":
      cfg.maxTxnOps = num();
      break;
    case "max-snapshots":
      cfg.maxSnapshots = num();
      break;
    case "max-wals":
      cfg.maxWals = num();
      break;
    case "auto-compaction-mode":
      cfg.autoCompactionMode = v as EtcdConfig["autoCompactionMode"]; // checked in validateConfig
      break;
    case "auto-compaction-retention":
      cfg.autoCompactionRetention = v;
      break;
    case "cors":
      cfg.cors = v === "" ? ["*"] : uniqueList(v);
      break;
    case "force-new-cluster":
      cfg.forceNewCluster = bool();
      break;
    case "enable-grpc-gateway":
      cfg.enableGrpcGateway = bool();
      break;
    case "pre-vote":
      cfg.preVote = bool();
      break;
    case "strict-reconfig-check":
      cfg.strictReconfigCheck = bool();
      break;
    case "initial-election-tick-advance":
      cfg.initialElectionTickAdvance = bool();
      break;
    case "experimental-watch-progress-notify-interval": {
      // etcd keeps its default unless the interval is positive
      const ms = parseGoDuration(v)!;
      if (ms > 0) cfg.watchProgressNotifyIntervalMs = ms;
      break;
    }
    case "experimental-initial-corrupt-check":
      cfg.initialCorruptCheck = bool();
      break;
    case "experimental-corrupt-check-time":
      cfg.corruptCheckTimeMs = Math.max(0, parseGoDuration(v)!);
      break;
    case "experimental-enable-lease-checkpoint":
      cfg.leaseCheckpoint = bool();
      break;
    case "experimental-enable-lease-checkpoint-persist":
      cfg.leaseCheckpointPersist = bool();
      break;
    case "log-level":
      cfg.logLevel = v as LogLevel; // checked in validateConfig
      break;
    case "log-outputs":
      cfg.logOutputs = uniqueList(v);
      break;
  }
}

/**
 * Turns flag/key values into a config. `fromFlags` selects etcd's command-line-only rule: setting
 * --listen-client-urls without --advertise-client-urls drops the default advertise URL (then validation fails).
 */
function build(values: Map<string, string>, fromFlags: boolean, notices: ConfigNotice[]): EtcdConfig {
  const cfg = defaultConfig();
  cfg.dataDir = "";
  for (const [name, v] of values) {
    const spec = FLAG_BY_NAME.get(name)!;
    switch (spec.support) {
      case "legacy":
        notices.push({ level: "warn", msg: `flag "-${name}" is no longer supported - ignoring.` });
        continue;
      case "rejected":
      case "ignored":
        // A value equal to etcd's default asks for nothing detcd lacks (etcd's sample config sets many of these).
        if (sameValue(spec.kind, v, spec.def)) continue;
        if (spec.support === "rejected") throw new FlagError(`--${name} is not supported: ${spec.reason}`, 1);
        notices.push({ level: "warn", msg: `flag --${name} is not supported by detcd yet; ignored` });
        continue;
    }
    apply(cfg, name, v);
  }
  if (values.has("logger") && values.get("logger") !== "zap") {
    if (values.get("logger") !== "capnslog") throw new FlagError(`unknown logger option ${values.get("logger")}`, 1);
    notices.push({ level: "warn", msg: "--logger=capnslog is not supported by detcd; using zap" });
  }
  if (values.has("log-output") && !values.has("log-outputs")) {
    cfg.logOutputs = uniqueList(values.get("log-output")!);
    notices.push({ level: "warn", msg: "--log-output is deprecated; use --log-outputs" });
  }
  if (values.has("debug") && parseBool(values.get("debug")!)) cfg.logLevel = "debug";
  if (fromFlags && values.has("listen-client-urls") && !values.has("advertise-client-urls")) {
    cfg.advertiseClientUrls = [];
  }
  // etcd's UpdateDefaultClusterFromName: `--name abc` alone bootstraps a one-member cluster named abc.
  if (cfg.name !== "default" && cfg.initialCluster === DEFAULT_INITIAL_CLUSTER) {
    cfg.initialCluster = initialClusterFromName(cfg.name, cfg.initialAdvertisePeerUrls);
  }
  if (cfg.dataDir === "") {
    cfg.dataDir = `${cfg.name}.etcd`;
    notices.push({ level: "warn", msg: "'data-dir' was empty; using default", fields: { "data-dir": cfg.dataDir } });
  }
  return cfg;
}

function sameValue(kind: string, a: string, b: string): boolean {
  return kind === "bool" ? parseBool(a) === parseBool(b) : a === b;
}

function initialClusterFromName(name: string, peerUrls: URL[]): string {
  return peerUrls.map((u) => `${name}=${urlString(u)}`).join(",");
}

/** Parses "name=url,name=url" into member name → peer URLs (a name may repeat to list several URLs). */
export function parseInitialCluster(s: string): Map<string, URL[]> {
  const members = new Map<string, URL[]>();
  for (const entry of s.split(",")) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new Error(`invalid --initial-cluster entry ${JSON.stringify(entry)}: want name=url`);
    const name = entry.slice(0, eq).trim();
    const urls = members.get(name) ?? [];
    urls.push(...parseUrls(entry.slice(eq + 1)));
    members.set(name, urls);
  }
  return members;
}

/**
 * --auto-compaction-retention as a number: for "periodic" milliseconds (a bare integer means hours, as in etcd),
 * for "revision" a revision count. 0 means auto compaction is off. Throws on malformed input.
 */
export function parseCompactionRetention(mode: EtcdConfig["autoCompactionMode"], s: string): number {
  const n = parseGoInt(s, false);
  if (mode === "revision") {
    if (n === undefined) {
      throw new Error(`invalid auto compaction retention ${JSON.stringify(s)}: want a revision count`);
    }
    return n;
  }
  const ms = n !== undefined ? n * 3_600_000 : parseGoDuration(s);
  if (ms === undefined || ms < 0) {
    throw new Error(`invalid auto compaction retention ${JSON.stringify(s)}: want hours or a duration like "30m"`);
  }
  return ms;
}

/** embed.Config.Validate plus etcdserver's local-member check; throws with etcd's wording. */
export function validateConfig(cfg: EtcdConfig): void {
  if (!isLogLevel(cfg.logLevel)) {
    throw new Error(
      `unknown log level ${JSON.stringify(cfg.logLevel)}; only supports debug, info, warn, error, panic, or fatal`,
    );
  }
  checkBindUrls(cfg.listenPeerUrls);
  checkBindUrls(cfg.listenClientUrls);
  checkBindUrls(cfg.listenMetricsUrls);
  if (cfg.initialClusterState !== "new" && cfg.initialClusterState !== "existing") {
    throw new Error(`unexpected clusterState ${JSON.stringify(cfg.initialClusterState)}`);
  }
  if (cfg.heartbeatIntervalMs <= 0) {
    throw new Error(`--heartbeat-interval must be >0 (set to ${cfg.heartbeatIntervalMs}ms)`);
  }
  if (cfg.electionTimeoutMs <= 0) throw new Error(`--election-timeout must be >0 (set to ${cfg.electionTimeoutMs}ms)`);
  if (5 * cfg.heartbeatIntervalMs > cfg.electionTimeoutMs) {
    throw new Error(
      `--election-timeout[${cfg.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${cfg.heartbeatIntervalMs}ms]`,
    );
  }
  if (cfg.electionTimeoutMs > MAX_ELECTION_MS) {
    throw new Error(
      `--election-timeout[${cfg.electionTimeoutMs}ms] is too long, and should be set less than ${MAX_ELECTION_MS}ms`,
    );
  }
  for (const u of cfg.listenClientUrls) {
    if (u.protocol === "https:" && cfg.certFile === "" && cfg.keyFile === "") {
      throw new Error(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${urlString(u)} with HTTPS scheme`,
      );
    }
  }
  for (const u of cfg.listenMetricsUrls) {
    if (u.protocol === "https:" && cfg.certFile === "" && cfg.keyFile === "") {
      throw new Error(
        `TLS key/cert (--cert-file, --key-file) must be provided for metrics url ${urlString(u)} with HTTPS scheme`,
      );
    }
  }
  if ((cfg.certFile === "") !== (cfg.keyFile === "")) {
    throw new Error("--cert-file and --key-file must be given together");
  }
  if (cfg.listenClientUrls.length > 0 && cfg.advertiseClientUrls.length === 0) {
    throw new Error("--advertise-client-urls is required when --listen-client-urls is set explicitly");
  }
  if (cfg.autoCompactionMode !== "periodic" && cfg.autoCompactionMode !== "revision") {
    throw new Error(`unknown auto-compaction-mode ${JSON.stringify(cfg.autoCompactionMode)}`);
  }
  parseCompactionRetention(cfg.autoCompactionMode, cfg.autoCompactionRetention);
  if (cfg.leaseCheckpointPersist && !cfg.leaseCheckpoint) {
    throw new Error(
      "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint",
    );
  }
  if (!parseInitialCluster(cfg.initialCluster).has(cfg.name)) {
    throw new Error(`couldn't find local name ${JSON.stringify(cfg.name)} in the initial cluster configuration`);
  }
}

/**
 * Builds the configuration like `etcd [flags]`: --help/--version, then either --config-file (or ETCD_CONFIG_FILE),
 * in which case other flags and ETCD_* variables are ignored as in etcd, or flags over ETCD_* variables.
 */
export async function parseConfig(argv: string[], env: Record<string, string>): Promise<ParseConfigResult> {
  try {
    const args = parseFlagArgs(argv);
    if (args.help) return { ok: false, exit: 0, stdout: usageText() };
    if (args.rest.length > 0) throw new FlagError(`'${args.rest[0]}' is not a valid flag`, 1);
    if (parseBool(args.set.get("version") ?? "false")) return { ok: false, exit: 0, stdout: versionText() };

    const notices: ConfigNotice[] = [];
    const configFile = args.set.get("config-file") || env.ETCD_CONFIG_FILE || "";
    let config: EtcdConfig;
    if (configFile !== "") {
      let file;
      try {
        file = await readConfigFile(configFile);
      } catch (e) {
        throw new FlagError((e as Error).message, 1);
      }
      notices.push({
        level: "info",
        msg:
          "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided",
        fields: { path: configFile },
      });
      for (const w of file.warnings) notices.push({ level: "warn", msg: w });
      config = build(file.values, false, notices);
    } else {
      const merged = applyEnv(args.set, env);
      for (const msg of merged.infos) notices.push({ level: "info", msg });
      for (const msg of merged.warnings) notices.push({ level: "warn", msg });
      config = build(merged.values, true, notices);
    }
    if (env.DETCD_LEASE_CHECKPOINT_INTERVAL) {
      const ms = parseGoDuration(env.DETCD_LEASE_CHECKPOINT_INTERVAL);
      if (ms === undefined || ms <= 0) {
        throw new FlagError(`invalid DETCD_LEASE_CHECKPOINT_INTERVAL ${env.DETCD_LEASE_CHECKPOINT_INTERVAL}`, 1);
      }
      config.leaseCheckpointIntervalMs = ms;
    }
    try {
      validateConfig(config);
    } catch (e) {
      throw new FlagError((e as Error).message, 1);
    }
    return { ok: true, config, notices };
  } catch (e) {
    if (e instanceof FlagError) return { ok: false, exit: e.exit, error: e.message };
    throw e;
  }
}

/** Raft ticks of one election timeout (a tick is a heartbeat interval). */
export function electionTicks(cfg: EtcdConfig): number {
  return Math.max(2, Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs));
}

/** The shortest lease TTL granted, in seconds: 1.5 election timeouts rounded up, as etcd's minTTL. */
export function minLeaseTTL(cfg: EtcdConfig): number {
  return Math.ceil(Math.floor(3 * electionTicks(cfg) / 2) * cfg.heartbeatIntervalMs / 1000);
}
