// Command-line and ETCD_* environment parsing with Go's flag package semantics (etcd uses it), so scripts written for
// etcd keep working: -flag and --flag, "=value" or a separate value, booleans only as -flag or -flag=value, parsing
// stops at the first non-flag argument or "--".
import { FLAG_BY_NAME, FLAGS, type FlagSpec, flagToEnv } from "./flag_table.ts";
import { parseUrls } from "./urls.ts";

/** A command-line mistake; exit is 2 for Go flag-package errors and 1 for etcd's later verification errors. */
export class FlagError extends Error {
  constructor(message: string, readonly exit: 1 | 2) {
    super(message);
  }
}

export interface FlagArgs {
  /** Flags given on the command line, in order of appearance (a repeated flag keeps its last value). */
  set: Map<string, string>;
  /** -h, -help or --help was given. */
  help: boolean;
  /** Arguments after the flags; etcd refuses them. */
  rest: string[];
}

const BOOL_VALUES: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  TRUE: true,
  true: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  FALSE: false,
  false: false,
  False: false,
};

/** Go's strconv.ParseBool. */
export function parseBool(s: string): boolean | undefined {
  return Object.hasOwn(BOOL_VALUES, s) ? BOOL_VALUES[s] : undefined;
}

/** Go's strconv.ParseInt/ParseUint with base 0 (0x, 0o, 0b, leading-0 octal, underscores); undefined if invalid. */
export function parseGoInt(s: string, signed: boolean): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(s);
  if (!m || (m[1] !== "" && !signed) || /__|_$/.test(m[2])) return undefined;
  let digits = m[2].replaceAll("_", "");
  if (/^0[0-7]/.test(digits)) digits = "0o" + digits.slice(1);
  const n = Number(BigInt(digits.toLowerCase()));
  if (!Number.isSafeInteger(n)) return undefined;
  return m[1] === "-" ? -n : n;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration, in milliseconds; undefined if invalid. */
export function parseGoDuration(s: string): number | undefined {
  if (s === "0" || s === "+0" || s === "-0") return 0;
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)$/.exec(s);
  if (!m) return undefined;
  let ms = 0;
  for (const part of m[2].matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    ms += Number(part[1]) * DURATION_UNITS[part[2]];
  }
  return m[1] === "-" ? -ms : ms;
}

/** Checks a value the way the Go flag.Value for `spec` would; returns Go's error text, or undefined if valid. */
export function checkValue(spec: FlagSpec, v: string): string | undefined {
  switch (spec.kind) {
    case "bool":
      return parseBool(v) === undefined ? "parse error" : undefined;
    case "uint":
    case "int": {
      const n = parseGoInt(v, spec.kind === "int");
      return n === undefined ? "parse error" : undefined;
    }
    case "duration":
      return parseGoDuration(v) === undefined ? "parse error" : undefined;
    case "choice":
      return spec.choices!.includes(v) ? undefined : "invalid value";
    case "urls":
      if (v === "") return undefined;
      try {
        parseUrls(v);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    default:
      return undefined;
  }
}

function setValue(spec: FlagSpec, name: string, value: string, set: Map<string, string>): void {
  const err = checkValue(spec, value);
  if (err !== undefined) {
    throw new FlagError(
      spec.kind === "bool"
        ? `invalid boolean value ${JSON.stringify(value)} for -${name}: ${err}`
        : `invalid value ${JSON.stringify(value)} for flag -${name}: ${err}`,
      2,
    );
  }
  set.delete(name); // re-insert so iteration order reflects the last occurrence
  set.set(name, value);
}

/** Parses argv like Go's flag.FlagSet.Parse over etcd's flag set. Throws FlagError. */
export function parseFlagArgs(argv: string[]): FlagArgs {
  const set = new Map<string, string>();
  let i = 0;
  while (i < argv.length) {
    const s = argv[i];
    if (s.length < 2 || s[0] !== "-") break;
    let dashes = 1;
    if (s[1] === "-") {
      dashes = 2;
      if (s.length === 2) {
        i++;
        break;
      }
    }
    let name = s.slice(dashes);
    if (name === "" || name[0] === "-" || name[0] === "=") throw new FlagError(`bad flag syntax: ${s}`, 2);
    i++;
    const eq = name.indexOf("=", 1);
    const value = eq >= 0 ? name.slice(eq + 1) : undefined;
    if (eq >= 0) name = name.slice(0, eq);
    const spec = FLAG_BY_NAME.get(name);
    if (!spec) {
      if (name === "help" || name === "h") return { set, help: true, rest: [] };
      throw new FlagError(`flag provided but not defined: -${name}`, 2);
    }
    if (spec.kind === "bool") {
      setValue(spec, name, value ?? "true", set);
      continue;
    }
    if (value !== undefined) {
      setValue(spec, name, value, set);
      continue;
    }
    if (i >= argv.length) throw new FlagError(`flag needs an argument: -${name}`, 2);
    setValue(spec, name, argv[i++], set);
  }
  return { set, help: false, rest: argv.slice(i) };
}

/**
 * etcd's flags.SetFlagsFromEnv: fills flags not given on the command line from ETCD_<FLAG> variables, refuses a
 * variable shadowed by its flag, and reports unknown ETCD_* variables. Returns the merged values and log notices.
 */
export function applyEnv(
  set: Map<string, string>,
  env: Record<string, string>,
): { values: Map<string, string>; infos: string[]; warnings: string[] } {
  const values = new Map(set);
  const infos: string[] = [];
  const warnings: string[] = [];
  const used = new Set<string>();
  for (const spec of FLAGS) {
    const key = flagToEnv(spec.name);
    const v = env[key];
    if (set.has(spec.name) || v === undefined || v === "") continue;
    used.add(key);
    const err = checkValue(spec, v);
    if (err !== undefined) throw new FlagError(`invalid value ${JSON.stringify(v)} for ${key}: ${err}`, 1);
    values.set(spec.name, v);
    infos.push(`recognized and used environment variable ${key}=${v}`);
  }
  const shadowed = new Set([...set.keys()].map(flagToEnv));
  for (const [key, v] of Object.entries(env)) {
    if (used.has(key)) continue;
    if (shadowed.has(key)) {
      throw new FlagError(
        `conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
        1,
      );
    }
    if (key.startsWith("ETCD_")) warnings.push(`unrecognized environment variable ${key}=${v}`);
  }
  return { values, infos, warnings };
}
