// detcd entry point, like etcd's etcdmain: configuration, logger, server start, systemd readiness, and shutdown on
// SIGINT/SIGTERM. Exit codes follow etcd: 0 clean stop or --help/--version, 2 flag syntax error, 1 any other failure.
import { parseConfig } from "./server/config.ts";
import type { Etcd } from "./server/embed.ts";
import { createLogger, type Logger, outputsIncludeStderr } from "./server/logger.ts";
import { sdNotify } from "./server/sd_notify.ts";

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const SIGNAL_NUMBERS: Record<(typeof SIGNALS)[number], number> = { SIGINT: 2, SIGTERM: 15 };

/** Errors before the configured logger exists go to stderr as one zap-shaped JSON line. */
const stderrLogger = createLogger("info", ["stderr"]);

function failStart(logger: Logger, outputs: string[], msg: string, err: unknown): never {
  logger.error(msg, { error: err });
  if (!outputsIncludeStderr(outputs)) stderrLogger.error(msg, { error: err });
  Deno.exit(1);
}

async function main(): Promise<void> {
  const parsed = await parseConfig(Deno.args, Deno.env.toObject());
  if (!parsed.ok) {
    if (parsed.stdout) await Deno.stdout.write(new TextEncoder().encode(parsed.stdout));
    if (parsed.exit === 2) console.error(parsed.error);
    else if (parsed.exit === 1) stderrLogger.error("failed to verify flags", { error: parsed.error });
    Deno.exit(parsed.exit);
  }
  const { config, notices } = parsed;

  let logger: Logger;
  try {
    logger = createLogger(config.logLevel, config.logOutputs);
  } catch (err) {
    stderrLogger.error("failed to set up logging", { error: err, "log-outputs": config.logOutputs });
    Deno.exit(1);
  }
  for (const n of notices) logger[n.level](n.msg, n.fields);

  // Installed before the server starts so a signal during startup still stops it cleanly, and at once: a member
  // waiting for a quorum (its publish) would otherwise hold `systemctl stop` until the peers come back.
  let stopping = false;
  let etcd: Etcd | undefined;
  const startup = new AbortController();
  const onSignal = (sig: (typeof SIGNALS)[number]) => {
    if (stopping) Deno.exit(128 + SIGNAL_NUMBERS[sig]); // second signal: the operator wants out now
    stopping = true;
    logger.info("received signal; shutting down", { signal: sig });
    notify(logger, "STOPPING=1");
    if (etcd) {
      etcd.close().then(() => Deno.exit(0), (err) => failStart(logger, config.logOutputs, "failed to stop", err));
    } else startup.abort();
  };
  for (const sig of SIGNALS) Deno.addSignalListener(sig, () => onSignal(sig));

  // Loaded lazily so --help, --version and flag errors do not pay for loading the server.
  const { startEtcd } = await import("./server/embed.ts");
  try {
    etcd = await startEtcd(config, logger, startup.signal);
  } catch (err) {
    if (startup.signal.aborted) Deno.exit(0); // stopped by the signal, everything closed
    failStart(logger, config.logOutputs, "failed to start etcd", err);
  }
  if (stopping) {
    await etcd.close();
    Deno.exit(0);
  }
  notify(logger, "READY=1");
  try {
    await etcd.closed;
  } catch (err) {
    if (!stopping) failStart(logger, config.logOutputs, "etcd server stopped with an error", err);
  }
  if (!stopping) Deno.exit(0);
}

function notify(logger: Logger, state: string): void {
  try {
    sdNotify(state);
  } catch (err) {
    logger.error("failed to notify systemd", { state, error: err });
  }
}

await main();
