// Reads etcd's --config-file YAML (embed.configYAML keys) into flag-syntax strings, so the file goes through the same
// value checks and conversions as flags; TLS sections are checked here because they have no flag-shaped keys.
import { FLAG_BY_NAME } from "./flag_table.ts";
import { checkValue } from "./flags.ts";

const TLS_SECTIONS = new Set(["client-transport-security", "peer-transport-security"]);
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
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    if (v === null) continue; // like Go's json: null leaves the default
    if (TLS_SECTIONS.has(key)) {
      const used = typeof v === "object" &&
        Object.values(v as object).some((x) => x !== null && x !== "" && x !== false);
      if (used) throw new Error(`config file key "${key}" is not supported: TLS is not implemented in detcd`);
      continue;
    }
    const spec = FLAG_BY_NAME.get(key);
    if (!spec || spec.support === "legacy" || NOT_KEYS.has(key)) {
      warnings.push(`unrecognized config file key "${key}"; ignored`);
      continue;
    }
    const s = toFlagText(key, v);
    const err = checkValue(spec, s);
    if (err !== undefined) throw new Error(`config file key "${key}": invalid value ${JSON.stringify(s)}: ${err}`);
    values.set(key, s);
  }
  return { values, warnings };
}
