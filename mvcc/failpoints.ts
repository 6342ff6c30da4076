// Failpoints for fault-injection tests (etcd has gofail's): set with DETCD_FAILPOINTS="name=action;...". The one
// action is "error-while-file:PATH": the named point throws an I/O-like error whenever PATH exists, so a test can
// arm it at the moment it chooses, in a running member. Unset, a point costs one lookup in an empty map.

const points = parse(readEnv());

function readEnv(): string {
  try {
    return Deno.env.get("DETCD_FAILPOINTS") ?? "";
  } catch {
    return ""; // no --allow-env: no failpoints
  }
}

function parse(spec: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of spec.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const action = part.slice(eq + 1).trim();
    if (!action.startsWith("error-while-file:")) {
      throw new Error(`failpoints: unknown action ${JSON.stringify(action)}`);
    }
    out.set(part.slice(0, eq).trim(), action.slice("error-while-file:".length));
  }
  return out;
}

/** Throws when failpoint `name` is armed. */
export function failpoint(name: string): void {
  if (points.size === 0) return;
  const path = points.get(name);
  if (path === undefined) return;
  try {
    Deno.statSync(path);
  } catch {
    return;
  }
  throw new Error(`failpoint ${name}: injected I/O error`);
}
