// Reads etcd's --config-file YAML (embed.configYAML keys) into flag-syntax strings, so the file goes through the same
// value checks and conversions as flags; the keys of its TLS sections stand for the flags of the same names.
import { FLAG_BY_NAME } from "./flag_table.ts";
import { checkValue } from "./flags.ts";

/** etcd's YAML TLS sections (securityConfig): a key `k` of one is the flag prefix + `k`. */
const TLS_SECTIONS = new Map([["client-transport-security", ""], ["peer-transport-security", "peer-"]]);
const TLS_KEYS = new Set(["cert-file", "key-file", "client-cert-auth", "trusted-ca-file", "auto-tls"]);
/** Flag names that are not configuration keys in etcd's YAML. */
const NOT_KEYS = new Set(["config-file", "version"]);

function toFlagText(key: string, v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join(",");
  throw new Error(`config file key "${key}": unexpected value ${JSON.stringify(v)}`);
}

/** Key → value (flag syntax) for the known keys of the file, plus warnings for keys detcd does not know. */
export async function readConfigFile(path: string): Promise<{ values: Map<string, string>; warnings: string[] }> {
  const text = Deno.readTextFileSync(path);
  // loaded only for a config file: importing the YAML parser took ~30 ms of every start
  const { parse: parseYaml } = await import("yaml");
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (e) {
    throw new Error(`error parsing config file ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`config file ${path} is not a YAML mapping`);
  const values = new Map<string, string>();
  const warnings: string[] = [];
  const take = (key: string, flag: string, v: unknown) => {
    if (v === null) return; // like Go's json: null leaves the default
    const spec = FLAG_BY_NAME.get(flag);
    if (!spec || spec.support === "legacy" || NOT_KEYS.has(flag)) {
      warnings.push(`unrecognized config file key "${key}"; ignored`);
      return;
    }
    const s = toFlagText(key, v);
    const err = checkValue(spec, s);
    if (err !== undefined) throw new Error(`config file key "${key}": invalid value ${JSON.stringify(s)}: ${err}`);
    values.set(flag, s);
  };
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    const prefix = TLS_SECTIONS.get(key);
    if (prefix === undefined) {
      take(key, key, v);
      continue;
    }
    if (v === null) continue;
    if (typeof v !== "object" || Array.isArray(v)) throw new Error(`config file key "${key}": expected a mapping`);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (TLS_KEYS.has(k)) take(`${key}.${k}`, prefix + k, x);
      else warnings.push(`unrecognized config file key "${key}.${k}"; ignored`);
    }
  }
  return { values, warnings };
}
