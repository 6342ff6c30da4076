// A zap-like JSON-lines logger, shaped like etcd 3.4's zap production logger so log tooling built for etcd works.
export type LogLevel = "debug" | "info" | "warn" | "error" | "panic" | "fatal";
export type LogFields = Record<string, unknown>;

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "panic", "fatal"];

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Logs, then throws (zap panics). */
  panic(msg: string, fields?: LogFields): never;
  /** Logs, then exits the process with code 1 like zap; the memory logger throws FatalLogError instead. */
  fatal(msg: string, fields?: LogFields): never;
  /** A logger whose lines carry `caller` = component (e.g. "etcdserver/raft") and the given fixed fields. */
  child(component: string, fields?: LogFields): Logger;
}

export interface LogEntry {
  level: LogLevel;
  ts: string;
  caller: string;
  msg: string;
  [key: string]: unknown;
}

export class FatalLogError extends Error {}

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 };

export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(rank, s);
}

/** Serialises fields as `,"k":v` pairs; errors become their message like zap.Error. */
function encodeFields(fields: LogFields | undefined): string {
  if (fields === undefined) return "";
  let out = "";
  for (const key in fields) out += `,${JSON.stringify(key)}:${encodeValue(fields[key])}`;
  return out;
}

function encodeValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "bigint") return v.toString();
  if (v === undefined) return "null";
  try {
    return JSON.stringify(v, (_k, x) => typeof x === "bigint" ? x.toString() : x) ?? "null";
  } catch {
    return JSON.stringify(String(v));
  }
}

type Sink = (line: string) => void;

class JsonLogger implements Logger {
  constructor(
    readonly level: LogLevel,
    private readonly sink: Sink,
    private readonly caller: string,
    private readonly fixed: string, // pre-encoded child fields
    private readonly onFatal: (msg: string) => never,
  ) {}

  enabled(level: LogLevel): boolean {
    return rank[level] >= rank[this.level];
  }

  private write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (rank[level] < rank[this.level]) return;
    this.sink(
      `{"level":"${level}","ts":"${new Date().toISOString()}","caller":${JSON.stringify(this.caller)},"msg":${
        JSON.stringify(msg)
      }${this.fixed}${encodeFields(fields)}}`,
    );
  }

  debug(msg: string, fields?: LogFields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write("error", msg, fields);
  }
  panic(msg: string, fields?: LogFields): never {
    this.write("panic", msg, fields);
    throw new Error(msg);
  }
  fatal(msg: string, fields?: LogFields): never {
    this.write("fatal", msg, fields);
    return this.onFatal(msg);
  }
  child(component: string, fields?: LogFields): Logger {
    return new JsonLogger(this.level, this.sink, component, this.fixed + encodeFields(fields), this.onFatal);
  }
}

const encoder = new TextEncoder();

function writeAll(w: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += w.writeSync(bytes.subarray(off));
}

/**
 * Logger writing JSON lines synchronously (so lines are never lost on exit) to each of `outputs`:
 * "default"/"stderr", "stdout", or a file path opened for append. Throws if a file cannot be opened.
 */
export function createLogger(level: LogLevel, outputs: string[], component = "etcdmain"): Logger {
  const writers = [...new Set(outputs.map((o) => o === "default" ? "stderr" : o))].map((o) => {
    if (o === "stderr") return Deno.stderr;
    if (o === "stdout") return Deno.stdout;
    return Deno.openSync(o, { create: true, append: true });
  });
  const sink: Sink = (line) => {
    const bytes = encoder.encode(line + "\n");
    for (const w of writers) writeAll(w, bytes);
  };
  return new JsonLogger(level, sink, component, "", () => Deno.exit(1));
}

/** True if a logger built from `outputs` already writes to stderr. */
export function outputsIncludeStderr(outputs: string[]): boolean {
  return outputs.includes("default") || outputs.includes("stderr");
}

export function nopLogger(): Logger {
  return new JsonLogger("fatal", () => {}, "", "", (msg) => {
    throw new FatalLogError(msg);
  });
}

/** Collects parsed entries in memory for tests; fatal throws FatalLogError rather than exiting. */
export function memoryLogger(level: LogLevel = "debug"): Logger & { entries: LogEntry[]; lines: string[] } {
  const lines: string[] = [];
  const entries: LogEntry[] = [];
  const logger = new JsonLogger(
    level,
    (line) => {
      lines.push(line);
      entries.push(JSON.parse(line));
    },
    "test",
    "",
    (msg) => {
      throw new FatalLogError(msg);
    },
  );
  return Object.assign(logger, { entries, lines });
}
