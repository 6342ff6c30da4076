// Failpoints for fault-injection tests (etcd has gofail's): set with DETCD_FAILPOINTS="name=action;...". Actions:
// "error-while-file:PATH": the named point throws an I/O-like error whenever PATH exists; "wait-while-file:PATH": the
// named point holds what passes it while PATH exists. A test arms either at the moment it chooses, in a running
// member. Unset, a point costs one lookup in an empty map.

interface Point {
  action: "error-while-file" | "wait-while-file";
  path: string;
}

const points = parse(readEnv());

function readEnv(): string {
  try {
    return Deno.env.get("DETCD_FAILPOINTS") ?? "";
  } catch {
    return ""; // no --allow-env: no failpoints
  }
}

function parse(spec: string): Map<string, Point> {
  const out = new Map<string, Point>();
  for (const part of spec.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const value = part.slice(eq + 1).trim();
    const colon = value.indexOf(":");
    const action = value.slice(0, colon);
    if (colon < 0 || (action !== "error-while-file" && action !== "wait-while-file")) {
      throw new Error(`failpoints: unknown action ${JSON.stringify(value)}`);
    }
    out.set(part.slice(0, eq).trim(), { action, path: value.slice(colon + 1) });
  }
  return out;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Throws when error failpoint `name` is armed. */
export function failpoint(name: string): void {
  if (points.size === 0) return;
  const p = points.get(name);
  if (p === undefined || p.action !== "error-while-file" || !exists(p.path)) return;
  throw new Error(`failpoint ${name}: injected I/O error`);
}

/** While wait failpoint `name` is armed: a promise that resolves once it is not (polled every 20 ms). */
export function failpointHold(name: string): Promise<void> | undefined {
  if (points.size === 0) return undefined;
  const p = points.get(name);
  if (p === undefined || p.action !== "wait-while-file" || !exists(p.path)) return undefined;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (exists(p.path)) return;
      clearInterval(timer);
      resolve();
    }, 20);
    Deno.unrefTimer(timer);
  });
}
