// Minimal assertions (no registry access in this environment).

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function canon(v: unknown): unknown {
  // node IDs are bigints: 2n is not 2
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Uint8Array) return `bytes(${Array.from(v).join(",")})`;
  if (v instanceof Map) return ["Map", [...v.entries()].map(([k, x]) => [canon(k), canon(x)])];
  if (v instanceof Set) return ["Set", [...v].map(canon)];
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) o[k] = canon(x);
    }
    return o;
  }
  return v;
}

export function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(canon(actual));
  const e = JSON.stringify(canon(expected));
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}values differ\n  actual:   ${a}\n  expected: ${e}`);
}

export function assertThrows(f: () => unknown, msgIncludes?: string): Error {
  try {
    f();
  } catch (e) {
    if (msgIncludes !== undefined && !(e instanceof Error && e.message.includes(msgIncludes))) {
      throw new Error(`expected error containing "${msgIncludes}", got ${e}`);
    }
    return e as Error;
  }
  throw new Error("expected function to throw");
}
