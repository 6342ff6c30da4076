// The workload: clients on every member reading, writing and compare-and-setting a few keys (registers) through
// etcd's JSON gateway, one request at a time each, every operation recorded in the history. A request that never
// reached the member (connection refused) was not applied; any other failure leaves its outcome unknown.
import { Buffer } from "node:buffer";
import type { FaultCluster, Node } from "./cluster.ts";
import type { HistoryRecorder, Pending, RegisterInput } from "./history.ts";

/** A request that failed; `sent` false when it never reached the member (so it was not applied). */
export class RequestError extends Error {
  constructor(message: string, readonly sent: boolean) {
    super(message);
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

/**
 * Every request on a connection of its own: a pooled fetch that loses its connection under a request may send it
 * again on a new one, and then "connection refused" no longer proves that the member never got it (measured: a put
 * reported refused was in the store's history).
 */
const unpooled = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

/** POSTs a JSON request to a member's gateway and returns the JSON answer; throws RequestError. */
export async function gateway(endpoint: string, path: string, body: unknown, timeoutMs: number): Promise<Json> {
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(`http://${endpoint}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal,
      client: unpooled,
    });
  } catch (e) {
    throw new RequestError(`${e}: ${(e as Error).cause}`, !String((e as Error).cause).includes("Connection refused"));
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw new RequestError(String(e), true);
  }
  if (!res.ok) throw new RequestError(`${res.status} ${text}`, true);
  return JSON.parse(text);
}

/** A unary call in the Connect protocol with JSON (for the RPCs the gateway does not route, e.g. HashKV). */
export async function connectUnary(endpoint: string, method: string, body: unknown, timeoutMs: number): Promise<Json> {
  const res = await fetch(`http://${endpoint}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new RequestError(`${method}: ${res.status} ${text}`, true);
  return JSON.parse(text);
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64").toString();

export interface WorkloadOptions {
  keys: number;
  clientsPerMember: number;
  /** Per request; past it the outcome is unknown. */
  timeoutMs: number;
  rand: () => number;
}

export interface WorkloadCounts {
  ok: number;
  unknown: number;
  notApplied: number;
}

export class Workload {
  readonly counts: WorkloadCounts = { ok: 0, unknown: 0, notApplied: 0 };
  #stopped = false;
  #clients: Promise<void>[] = [];

  constructor(
    private readonly cluster: FaultCluster,
    private readonly history: HistoryRecorder,
    private readonly opts: WorkloadOptions,
  ) {}

  static keyName(i: number): string {
    return `reg/${i}`;
  }

  start(): void {
    let id = 0;
    for (const n of this.cluster.nodes) {
      for (let c = 0; c < this.opts.clientsPerMember; c++) this.#clients.push(this.#client(id++, n));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#clients);
  }

  async #client(id: number, node: Node): Promise<void> {
    const { rand, keys } = this.opts;
    /** The last value this client saw per key: what its compare-and-sets expect. */
    const seen = new Map<string, string | null>();
    for (let seq = 0; !this.#stopped; seq++) {
      const k = Math.floor(rand() * keys);
      const key = Workload.keyName(k);
      const value = `${id}.${seq}`;
      const kind = rand();
      if (kind >= 0.9) {
        // a transaction writing two keys at one revision: a write to each in the history, the watches see it whole
        const other = Workload.keyName((k + 1 + Math.floor(rand() * (keys - 1))) % keys);
        const outcome = await this.#putBoth(this.cluster.endpoint(node), key, other, value, id, seen);
        if (outcome !== "answered") await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const input: RegisterInput = kind < 0.45
        ? { op: "read" }
        : kind < 0.7
        ? { op: "write", value }
        : { op: "cas", expect: seen.get(key) ?? null, value };
      const p = this.history.invoke(id, key, input);
      const outcome = await this.#perform(this.cluster.endpoint(node), key, input, p, seen);
      // a member that is down or without a leader fails at once: do not spin on it
      if (outcome !== "answered") await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Puts `value` to two keys in one Txn, recorded as a write to each. */
  async #putBoth(
    endpoint: string,
    a: string,
    b: string,
    value: string,
    client: number,
    seen: Map<string, string | null>,
  ): Promise<"answered" | "unknown" | "refused"> {
    const ps = [a, b].map((key) => this.history.invoke(client, key, { op: "write", value }));
    try {
      const put = (key: string) => ({ request_put: { key: b64(key), value: b64(value) } });
      const r = await gateway(endpoint, "/v3/kv/txn", { success: [put(a), put(b)] }, this.opts.timeoutMs);
      for (const p of ps) p.ok({}, Number(r.header.revision));
      seen.set(a, value);
      seen.set(b, value);
      this.counts.ok++;
      return "answered";
    } catch (e) {
      return this.#failed(e, ps);
    }
  }

  /** Sends one operation and completes `p`; notes in `seen` the value it read or wrote. */
  async #perform(
    endpoint: string,
    key: string,
    input: RegisterInput,
    p: Pending,
    seen: Map<string, string | null>,
  ): Promise<"answered" | "unknown" | "refused"> {
    const t = this.opts.timeoutMs;
    try {
      if (input.op === "read") {
        const r = await gateway(endpoint, "/v3/kv/range", { key: b64(key) }, t);
        const kv = r.kvs?.[0];
        const value = kv === undefined ? null : unb64(kv.value ?? "");
        p.ok({ value });
        seen.set(key, value);
        this.counts.ok++;
        return "answered";
      }
      if (input.op === "write") {
        const r = await gateway(endpoint, "/v3/kv/put", { key: b64(key), value: b64(input.value) }, t);
        p.ok({}, Number(r.header.revision));
        seen.set(key, input.value);
        this.counts.ok++;
        return "answered";
      }
      const compare = input.expect === null
        ? { key: b64(key), target: "CREATE", result: "EQUAL", create_revision: "0" }
        : { key: b64(key), target: "VALUE", result: "EQUAL", value: b64(input.expect) };
      const r = await gateway(endpoint, "/v3/kv/txn", {
        compare: [compare],
        success: [{ request_put: { key: b64(key), value: b64(input.value) } }],
      }, t);
      const swapped = r.succeeded === true;
      p.ok({ ok: swapped }, swapped ? Number(r.header.revision) : undefined);
      if (swapped) seen.set(key, input.value);
      this.counts.ok++;
      return "answered";
    } catch (e) {
      return this.#failed(e, [p]);
    }
  }

  /** A request failed: its operations are unknown, or not applied when it never reached the member. */
  #failed(e: unknown, ps: Pending[]): "unknown" | "refused" {
    if (!(e instanceof RequestError)) throw e;
    for (const p of ps) e.sent ? p.unknown() : p.notApplied();
    if (e.sent) this.counts.unknown++;
    else this.counts.notApplied++;
    return e.sent ? "unknown" : "refused";
  }
}
