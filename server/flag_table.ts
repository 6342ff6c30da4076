// Every etcd 3.4 server flag (etcdmain/config.go), with its Go value type and how detcd treats it. The table drives
// command-line parsing, ETCD_* environment variables, config-file keys and --help, so they cannot drift apart.

/** Go flag value types; they decide how a value is syntax-checked even when detcd ignores the flag. */
export type FlagKind = "string" | "bool" | "uint" | "int" | "duration" | "urls" | "list" | "choice";

/**
 * implemented: detcd honours it. ignored: accepted with a warning, ignoring it cannot surprise.
 * rejected: accepted only at its default value (then ignored silently), any other value is an error because
 * ignoring it would change what the operator asked for (TLS, proxying, discovery, v2).
 * legacy: etcd's own "no longer supported - ignoring" flags.
 */
export type FlagSupport = "implemented" | "ignored" | "rejected" | "legacy";

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  /** Default as etcd prints it in --help, and the value a "rejected" flag may carry. */
  def: string;
  support: FlagSupport;
  section: string;
  usage: string;
  choices?: readonly string[];
  /** Why a rejected flag is refused. */
  reason?: string;
}

const PEER_TLS = "TLS on peer URLs is not implemented in detcd";
// Deno's TLS server asks for a client certificate but does not verify it against any CA (measured with 2.9.6: one
// signed by an unknown CA is taken), so authenticating clients by certificate cannot be offered
const CLIENT_CERTS = "client certificate authentication is not implemented in detcd";
const DISCOVERY = "discovery bootstrapping is not implemented in detcd; use --initial-cluster";
const PROXY = "the v2 proxy is not implemented in detcd";
const V2 = "the v2 API is not implemented in detcd";

function f(
  section: string,
  name: string,
  kind: FlagKind,
  def: string,
  support: FlagSupport,
  usage: string,
  extra: Partial<FlagSpec> = {},
): FlagSpec {
  return { section, name, kind, def, support, usage, ...extra };
}

export const FLAGS: readonly FlagSpec[] = [
  f("", "config-file", "string", "", "implemented", "Path to the server configuration file."),
  f("Member", "name", "string", "default", "implemented", "Human-readable name for this member."),
  f("Member", "data-dir", "string", "${name}.etcd", "implemented", "Path to the data directory."),
  f("Member", "wal-dir", "string", "", "implemented", "Path to the dedicated wal directory."),
  f(
    "Member",
    "snapshot-count",
    "uint",
    "100000",
    "implemented",
    "Number of committed transactions to trigger a snapshot to disk.",
  ),
  f("Member", "heartbeat-interval", "uint", "100", "implemented", "Time (in milliseconds) of a heartbeat interval."),
  f("Member", "election-timeout", "uint", "1000", "implemented", "Time (in milliseconds) for an election to timeout."),
  f(
    "Member",
    "initial-election-tick-advance",
    "bool",
    "true",
    "implemented",
    "Whether to fast-forward initial election ticks on boot for faster election.",
  ),
  f(
    "Member",
    "listen-peer-urls",
    "urls",
    "http://localhost:2380",
    "implemented",
    "List of URLs to listen on for peer traffic.",
  ),
  f(
    "Member",
    "listen-client-urls",
    "urls",
    "http://localhost:2379",
    "implemented",
    "List of URLs to listen on for client traffic.",
  ),
  f(
    "Member",
    "max-snapshots",
    "uint",
    "5",
    "implemented",
    "Maximum number of snapshot files to retain (0 is unlimited).",
  ),
  f("Member", "max-wals", "uint", "5", "implemented", "Maximum number of wal files to retain (0 is unlimited)."),
  f(
    "Member",
    "quota-backend-bytes",
    "int",
    "0",
    "implemented",
    "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).",
  ),
  f(
    "Member",
    "backend-batch-interval",
    "duration",
    "",
    "ignored",
    "Maximum time before committing the backend transaction.",
  ),
  f(
    "Member",
    "backend-batch-limit",
    "int",
    "0",
    "ignored",
    "Maximum operations before committing the backend transaction.",
  ),
  f("Member", "max-txn-ops", "uint", "128", "implemented", "Maximum number of operations permitted in a transaction."),
  f(
    "Member",
    "max-request-bytes",
    "uint",
    "1572864",
    "implemented",
    "Maximum client request size in bytes the server will accept.",
  ),
  f(
    "Member",
    "max-concurrent-streams",
    "uint",
    "4294967295",
    "ignored",
    "Maximum concurrent streams that each client can open at a time.",
  ),
  f(
    "Member",
    "grpc-keepalive-min-time",
    "duration",
    "5s",
    "ignored",
    "Minimum duration interval that a client should wait before pinging server.",
  ),
  f(
    "Member",
    "grpc-keepalive-interval",
    "duration",
    "2h",
    "ignored",
    "Frequency duration of server-to-client ping to check if a connection is alive.",
  ),
  f(
    "Member",
    "grpc-keepalive-timeout",
    "duration",
    "20s",
    "ignored",
    "Additional duration of wait before closing a non-responsive connection.",
  ),
  f(
    "Clustering",
    "initial-advertise-peer-urls",
    "urls",
    "http://localhost:2380",
    "implemented",
    "List of this member's peer URLs to advertise to the rest of the cluster.",
  ),
  f(
    "Clustering",
    "initial-cluster",
    "string",
    "default=http://localhost:2380",
    "implemented",
    "Initial cluster configuration for bootstrapping.",
  ),
  f(
    "Clustering",
    "initial-cluster-state",
    "choice",
    "new",
    "implemented",
    "Initial cluster state ('new' or 'existing').",
    { choices: ["new", "existing"] },
  ),
  f(
    "Clustering",
    "initial-cluster-token",
    "string",
    "etcd-cluster",
    "implemented",
    "Initial cluster token for the etcd cluster during bootstrap.",
  ),
  f(
    "Clustering",
    "advertise-client-urls",
    "urls",
    "http://localhost:2379",
    "implemented",
    "List of this member's client URLs to advertise to the public.",
  ),
  f("Clustering", "discovery", "string", "", "rejected", "Discovery URL used to bootstrap the cluster.", {
    reason: DISCOVERY,
  }),
  f(
    "Clustering",
    "discovery-fallback",
    "choice",
    "proxy",
    "ignored",
    "Expected behavior ('exit' or 'proxy') when discovery services fails.",
    { choices: ["proxy", "exit"] },
  ),
  f("Clustering", "discovery-proxy", "string", "", "rejected", "HTTP proxy to use for traffic to discovery service.", {
    reason: DISCOVERY,
  }),
  f("Clustering", "discovery-srv", "string", "", "rejected", "DNS srv domain used to bootstrap the cluster.", {
    reason: DISCOVERY,
  }),
  f(
    "Clustering",
    "discovery-srv-name",
    "string",
    "",
    "ignored",
    "Suffix to the dns srv name queried when bootstrapping.",
  ),
  f(
    "Clustering",
    "strict-reconfig-check",
    "bool",
    "true",
    "implemented",
    "Reject reconfiguration requests that would cause quorum loss.",
  ),
  f("Clustering", "pre-vote", "bool", "false", "implemented", "Enable to run an additional Raft election phase."),
  f(
    "Clustering",
    "auto-compaction-retention",
    "string",
    "0",
    "implemented",
    "Auto compaction retention length. 0 means disable auto compaction.",
  ),
  f(
    "Clustering",
    "auto-compaction-mode",
    "string",
    "periodic",
    "implemented",
    "Interpret 'auto-compaction-retention' one of: periodic|revision.",
  ),
  f("Clustering", "enable-v2", "bool", "false", "rejected", "Accept etcd V2 client requests.", { reason: V2 }),
  f("Security", "cert-file", "string", "", "implemented", "Path to the client server TLS cert file."),
  f("Security", "key-file", "string", "", "implemented", "Path to the client server TLS key file."),
  f("Security", "client-cert-auth", "bool", "false", "rejected", "Enable client cert authentication.", {
    reason: CLIENT_CERTS,
  }),
  f("Security", "client-crl-file", "string", "", "rejected", "Path to the client certificate revocation list file.", {
    reason: CLIENT_CERTS,
  }),
  f(
    "Security",
    "client-cert-allowed-hostname",
    "string",
    "",
    "rejected",
    "Allowed TLS hostname for client cert authentication.",
    { reason: CLIENT_CERTS },
  ),
  // etcd requires and verifies client certificates once a trusted CA is given
  f("Security", "trusted-ca-file", "string", "", "rejected", "Path to the client server TLS trusted CA cert file.", {
    reason: CLIENT_CERTS,
  }),
  f("Security", "auto-tls", "bool", "false", "rejected", "Client TLS using generated certificates.", {
    reason: "generated certificates are not implemented in detcd; give --cert-file and --key-file",
  }),
  f("Security", "peer-cert-file", "string", "", "rejected", "Path to the peer server TLS cert file.", {
    reason: PEER_TLS,
  }),
  f("Security", "peer-key-file", "string", "", "rejected", "Path to the peer server TLS key file.", {
    reason: PEER_TLS,
  }),
  f("Security", "peer-client-cert-auth", "bool", "false", "rejected", "Enable peer client cert authentication.", {
    reason: PEER_TLS,
  }),
  f("Security", "peer-trusted-ca-file", "string", "", "rejected", "Path to the peer server TLS trusted CA file.", {
    reason: PEER_TLS,
  }),
  f(
    "Security",
    "peer-cert-allowed-cn",
    "string",
    "",
    "rejected",
    "Required CN for client certs connecting to the peer endpoint.",
    { reason: PEER_TLS },
  ),
  f(
    "Security",
    "peer-cert-allowed-hostname",
    "string",
    "",
    "rejected",
    "Allowed TLS hostname for inter peer authentication.",
    { reason: PEER_TLS },
  ),
  f("Security", "peer-auto-tls", "bool", "false", "rejected", "Peer TLS using self-generated certificates.", {
    reason: PEER_TLS,
  }),
  f("Security", "peer-crl-file", "string", "", "rejected", "Path to the peer certificate revocation list file.", {
    reason: PEER_TLS,
  }),
  f("Security", "cipher-suites", "list", "", "rejected", "Comma-separated list of supported TLS cipher suites.", {
    reason: "choosing TLS cipher suites is not implemented in detcd",
  }),
  f(
    "Security",
    "experimental-peer-skip-client-san-verification",
    "bool",
    "false",
    "ignored",
    "Skip verification of SAN field in client certificate for peer connections.",
  ),
  f(
    "Security",
    "cors",
    "list",
    "*",
    "implemented",
    "Comma-separated whitelist of origins for CORS (empty or * means allow all).",
  ),
  f(
    "Security",
    "host-whitelist",
    "list",
    "*",
    "ignored",
    "Acceptable hostnames from HTTP client requests, if server is not secure.",
  ),
  f(
    "Auth",
    "auth-token",
    "string",
    "simple",
    "ignored",
    "Specify a v3 authentication token type and its options ('simple' or 'jwt').",
  ),
  f(
    "Auth",
    "bcrypt-cost",
    "uint",
    "10",
    "ignored",
    "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords.",
  ),
  f("Auth", "auth-token-ttl", "uint", "300", "ignored", "Time (in seconds) of the auth-token-ttl."),
  f(
    "Profiling and Monitoring",
    "enable-pprof",
    "bool",
    "false",
    "ignored",
    "Enable runtime profiling data via HTTP server.",
  ),
  f("Profiling and Monitoring", "metrics", "string", "basic", "ignored", "Set level of detail for exported metrics."),
  f(
    "Profiling and Monitoring",
    "listen-metrics-urls",
    "urls",
    "",
    "implemented",
    "List of URLs to listen on for the metrics and health endpoints.",
  ),
  f("Logging", "logger", "string", "zap", "implemented", "Only 'zap' (structured JSON logging) is supported."),
  f(
    "Logging",
    "log-outputs",
    "list",
    "default",
    "implemented",
    "'stdout', 'stderr' or file paths, comma separated ('default' is stderr).",
  ),
  f("Logging", "log-output", "list", "default", "implemented", "Deprecated alias of --log-outputs."),
  f(
    "Logging",
    "log-level",
    "string",
    "info",
    "implemented",
    "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
  ),
  f("Logging", "debug", "bool", "false", "implemented", "Deprecated: same as --log-level=debug."),
  f("Logging", "log-package-levels", "string", "", "ignored", "Specify a particular log level for each etcd package."),
  f("v2 Proxy", "proxy", "choice", "off", "rejected", "Proxy mode setting ('off', 'readonly' or 'on').", {
    choices: ["off", "readonly", "on"],
    reason: PROXY,
  }),
  f(
    "v2 Proxy",
    "proxy-failure-wait",
    "uint",
    "5000",
    "ignored",
    "Time (in milliseconds) an endpoint will be held in a failed state.",
  ),
  f(
    "v2 Proxy",
    "proxy-refresh-interval",
    "uint",
    "30000",
    "ignored",
    "Time (in milliseconds) of the endpoints refresh interval.",
  ),
  f("v2 Proxy", "proxy-dial-timeout", "uint", "1000", "ignored", "Time (in milliseconds) for a dial to timeout."),
  f("v2 Proxy", "proxy-write-timeout", "uint", "5000", "ignored", "Time (in milliseconds) for a write to timeout."),
  f("v2 Proxy", "proxy-read-timeout", "uint", "0", "ignored", "Time (in milliseconds) for a read to timeout."),
  f(
    "Experimental",
    "experimental-initial-corrupt-check",
    "bool",
    "false",
    "implemented",
    "Check data corruption before serving any client/peer traffic.",
  ),
  f(
    "Experimental",
    "experimental-corrupt-check-time",
    "duration",
    "0s",
    "implemented",
    "Duration of time between cluster corruption check passes.",
  ),
  f(
    "Experimental",
    "experimental-enable-v2v3",
    "string",
    "",
    "rejected",
    "Serve v2 requests through the v3 backend under a given prefix.",
    { reason: V2 },
  ),
  f(
    "Experimental",
    "experimental-backend-bbolt-freelist-type",
    "string",
    "array",
    "ignored",
    "Type of freelist that the boltdb backend uses.",
  ),
  f(
    "Experimental",
    "experimental-enable-lease-checkpoint",
    "bool",
    "false",
    "implemented",
    "Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change.",
  ),
  f(
    "Experimental",
    "experimental-enable-lease-checkpoint-persist",
    "bool",
    "false",
    "implemented",
    "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases. Always enabled in v3.6. Should be used to ensure smooth upgrade from v3.5 clusters with this feature enabled. Requires experimental-enable-lease-checkpoint to be enabled.",
  ),
  f(
    "Experimental",
    "experimental-compaction-batch-limit",
    "int",
    "1000",
    "ignored",
    "Maximum revisions deleted in each compaction batch.",
  ),
  f(
    "Experimental",
    "experimental-watch-progress-notify-interval",
    "duration",
    "10m",
    "implemented",
    "Duration of periodical watch progress notification.",
  ),
  f(
    "Experimental",
    "experimental-warning-apply-duration",
    "duration",
    "100ms",
    "ignored",
    "Warning is generated if requests take more than this duration.",
  ),
  f("Unsafe", "unsafe-no-fsync", "bool", "false", "ignored", "Disables fsync, unsafe, will cause data loss."),
  f("Unsafe", "force-new-cluster", "bool", "false", "implemented", "Force to create a new one-member cluster."),
  f("Gateway", "enable-grpc-gateway", "bool", "true", "implemented", "Enable the JSON/HTTP gateway for the v3 API."),
  f("", "version", "bool", "false", "implemented", "Print the version and exit."),
  ...[
    "cluster-active-size",
    "cluster-remove-delay",
    "cluster-sync-interval",
    "config",
    "force",
    "max-result-buffer",
    "max-retry-attempts",
    "peer-heartbeat-interval",
    "peer-election-timeout",
    "retry-interval",
    "snapshot",
    "v",
    "vv",
  ].map((name) => f("", name, "bool", "", "legacy", "")),
];

export const FLAG_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((s) => [s.name, s]));

/** etcd's flags.FlagToEnv: ETCD_ + upper-cased name with dashes turned into underscores. */
export function flagToEnv(name: string): string {
  return "ETCD_" + name.toUpperCase().replaceAll("-", "_");
}
