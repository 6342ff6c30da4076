// A watcher of the workload's keys on one member, through the gateway's watch stream, kept up across faults: when its
// stream breaks (the member killed, a timeout), it watches again from the revision after the last one it saw, as
// etcd's clients resume. Every response is kept for the watch checks.
import { Buffer } from "node:buffer";

export interface StoreEvent {
  type: "PUT" | "DELETE";
  key: string;
  value: string;
  modRevision: number;
}

export interface WatchResponse {
  events: StoreEvent[];
  /** Set when the member canceled the watch because its start revision was compacted. */
  compactRevision?: number;
  canceled?: boolean;
  cancelReason?: string;
}

// deno-lint-ignore no-explicit-any
type Json = any;

export function storeEvent(e: Json): StoreEvent {
  return {
    type: e.type === "DELETE" ? "DELETE" : "PUT",
    key: Buffer.from(e.kv.key, "base64").toString(),
    value: Buffer.from(e.kv.value ?? "", "base64").toString(),
    modRevision: Number(e.kv.mod_revision),
  };
}

export class ResumingWatcher {
  readonly responses: WatchResponse[] = [];
  /** How many times the stream was opened (1 + resumptions). */
  streams = 0;
  #next: number;
  #stopped = false;
  #ctrl: AbortController | undefined;
  #done: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly endpoint: () => string,
    readonly prefix: string,
    readonly startRevision: number,
    /** A laggard: each stream is dropped after 2 s and watched again this many ms later, so it falls behind. */
    private readonly lagMs = 0,
  ) {
    this.#next = startRevision;
  }

  start(): void {
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#ctrl?.abort();
    await this.#done;
  }

  /** The revision it has seen everything up to (the last event's), or startRevision - 1. */
  get seenRevision(): number {
    return this.#next - 1;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const drop = this.lagMs > 0 ? setTimeout(() => this.#ctrl?.abort(), 2000) : undefined;
      try {
        await this.#watch();
      } catch { /* broken (or dropped): watch again */ }
      clearTimeout(drop);
      if (!this.#stopped) await new Promise((r) => setTimeout(r, this.lagMs > 0 ? this.lagMs : 200));
    }
  }

  async #watch(): Promise<void> {
    this.#ctrl = new AbortController();
    this.streams++;
    const end = Buffer.from(this.prefix);
    end[end.length - 1]++;
    await watchStream(this.endpoint(), Buffer.from(this.prefix), end, this.#next, this.#ctrl.signal, (resp) => {
      if (resp.events.length > 0 || resp.canceled) this.responses.push(resp);
      if (resp.events.length > 0) this.#next = resp.events[resp.events.length - 1].modRevision + 1;
      // compacted away: what remains starts at the compaction
      if (resp.canceled && resp.compactRevision !== undefined) this.#next = resp.compactRevision;
      return !resp.canceled;
    });
  }
}

/**
 * Watches [key, end) from `startRevision` through the gateway's stream, handing each response to onResponse until it
 * returns false, the stream ends or it fails (an error line ends it too).
 */
async function watchStream(
  endpoint: string,
  key: Uint8Array,
  end: Uint8Array,
  startRevision: number,
  signal: AbortSignal,
  onResponse: (r: WatchResponse) => boolean,
): Promise<void> {
  const res = await fetch(`http://${endpoint}/v3/watch`, {
    method: "POST",
    body: JSON.stringify({
      create_request: {
        key: Buffer.from(key).toString("base64"),
        range_end: Buffer.from(end).toString("base64"),
        start_revision: String(startRevision),
      },
    }),
    signal,
  });
  let buf = "";
  const dec = new TextDecoder();
  // the signal alone does not always end a body read that waits for data (Deno 2.9.6, measured): cancel the reader
  const reader = res.body!.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  if (signal.aborted) cancel();
  for (;;) {
    const { done, value: chunk } = await reader.read();
    if (done) {
      if (signal.aborted) throw new Error("watch stopped");
      return;
    }
    buf += dec.decode(chunk, { stream: true });
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() === "") continue;
      const msg = JSON.parse(line);
      if (msg.result === undefined) throw new Error(`watch: ${JSON.stringify(msg.error)}`);
      const r = msg.result;
      const resp: WatchResponse = { events: (r.events ?? []).map(storeEvent) };
      if (r.compact_revision !== undefined && r.compact_revision !== "0") {
        resp.compactRevision = Number(r.compact_revision);
      }
      if (r.canceled) {
        resp.canceled = true;
        resp.cancelReason = r.cancel_reason;
      }
      if (!onResponse(resp)) return;
    }
  }
}

/**
 * The store's history, every key: a watch from `fromRevision` read until `untilRevision` (each revision has events).
 */
export async function watchHistory(
  endpoint: string,
  fromRevision: number,
  untilRevision: number,
  timeoutMs: number,
): Promise<StoreEvent[]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const events: StoreEvent[] = [];
  try {
    const all = Uint8Array.of(0); // from key "\0" to the end
    await watchStream(endpoint, all, all, fromRevision, ctrl.signal, (r) => {
      if (r.canceled) throw new Error(`watch from revision ${fromRevision} canceled: ${r.cancelReason}`);
      events.push(...r.events);
      return events.length === 0 || events[events.length - 1].modRevision < untilRevision;
    });
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  // a response may run past untilRevision (a catch-up batch); every revision has events, so the last kept is it
  const kept = events.filter((e) => e.modRevision <= untilRevision);
  if (kept.at(-1)?.modRevision !== untilRevision) {
    throw new Error(`watch ended at ${events.at(-1)?.modRevision ?? 0} before revision ${untilRevision}`);
  }
  return kept;
}
