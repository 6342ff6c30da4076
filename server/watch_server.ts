// The Watch service (etcd's v3rpc watch.go): one bidirectional stream carries many watchers. Requests create,
// cancel and ask for progress; responses are the control answers (created, canceled, progress) and the watchers'
// events, in the order they were produced, so a watcher's `created` always precedes its events.
//
// The stream holds a bounded backlog for its client (MAX_PENDING_*); past it its watchers are parked by the store
// (never blocking a write) and retried as soon as the client reads again.
import { requiresLeader } from "./require_leader.ts";
import { ErrGRPCNoLeader } from "./apply_errors.ts";
import { toBinary } from "@bufbuild/protobuf";
import { type Event, Event_EventType, EventSchema } from "../rpc/gen/mvccpb/kv_pb.ts";
import {
  type WatchCreateRequest,
  WatchCreateRequest_FilterType,
  type WatchRequest,
  type WatchResponse,
  WatchResponseSchema,
} from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import type { ResponseHeader } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { EMPTY_BYTES } from "../mvcc/bytes.ts";
import { bytesFieldSize } from "../wal/proto_wire.ts";
import { MvccError } from "../mvcc/errors.ts";
import type { WatchableStore } from "../mvcc/watchable_store.ts";
import type { Watcher, WatchSink } from "../mvcc/watcher_group.ts";
import { WatchStream } from "../mvcc/watch_stream.ts";
import type { Counter, Gauge } from "./metrics.ts";
import type { Backlogged } from "../rpc/services.ts";

/**
 * What a stream holds for a client before its watchers are parked: etcd's 128 responses (chanBufLen) and 1024
 * events, plus one response and 64 events per watcher on the stream. Queued results gather later revisions (see
 * send), so a watcher that keeps up needs about one response; the per-watcher share keeps a wide fan-out (hundreds
 * of watchers on one stream) flowing instead of parking most of it every write, while a client that stops reading
 * pins little more than that before its watchers are parked.
 */
const MAX_PENDING_RESPONSES = 128;
const MAX_PENDING_EVENTS = 1024;
const PENDING_EVENTS_PER_WATCHER = 64;

/** Events a queued result may gather from later revisions while it waits (etcd's watchBatchMaxRevs, in events). */
const MAX_JOINED_EVENTS = 1000;
/**
 * How long a stream's reader waits after a wake before the next (see #signal): BATCH_MS_PER_EVENT for each event
 * the last wake took, at most DELIVERY_BATCH_MS. The wait grows only while a stream's events come faster than
 * 1 / BATCH_MS_PER_EVENT (20 per ms): at most that much latency is traded for throughput, and only under a load at
 * which etcd's own delivery lags far more. Measured (compare-go.sh -q, ratios to etcd 3.4): 50 ms and 0.05 ms per
 * event against 25 and 0.025: 1000 watchers, puts/s 0.98-0.99 (was 0.90-0.96), events/s 1.04-1.06 (0.96-1.02),
 * delivery p99 0.41-0.45 (0.21-0.24); 200 watchers about the same, p99 0.75-0.86 (0.34-0.40).
 */
const DELIVERY_BATCH_MS = 50;
const BATCH_MS_PER_EVENT = 0.05;
/** Control responses held before the stream stops reading requests (etcd's ctrlStreamBufLen). */
const MAX_PENDING_CONTROL_RESPONSES = 16;
/** The watch ID of responses that belong to no watcher (clientv3.InvalidWatchID). */
const INVALID_WATCH_ID = -1n;

export interface WatchServerDeps {
  watchable: WatchableStore;
  header(revision: number): ResponseHeader;
  /** Largest response before a watcher that asked for fragments gets its events split. */
  maxRequestBytes: number;
  progressNotifyIntervalMs: number;
  /** Events handed to clients, and events waiting in streams' queues. */
  eventsSent: Counter;
  eventsPending: Gauge;
  /** A stream that required a leader (WithRequireLeader) ends with "no leader" when the member has long had none. */
  onLeaderLost: (cb: () => void) => () => void;
}

/** The Watch.Watch implementation: requests in, responses out, until the client goes away. */
export function watchHandler(
  deps: WatchServerDeps,
): (
  reqs: AsyncIterable<WatchRequest>,
  ctx: { signal: AbortSignal; requestHeader: Headers },
) => AsyncIterable<WatchResponse> {
  return (reqs, ctx) => {
    const sws = new ServerWatchStream(deps);
    if (requiresLeader(ctx.requestHeader)) {
      const unregister = deps.onLeaderLost(() => sws.fail(ErrGRPCNoLeader));
      ctx.signal.addEventListener("abort", unregister, { once: true });
    }
    if (ctx.signal.aborted) sws.close();
    else ctx.signal.addEventListener("abort", () => sws.close(), { once: true });
    void sws.receive(reqs);
    return sws;
  };
}

// Busy streams wait on one shared timer, so their responses are written in the same turn: one socket write per
// connection for all of its streams, not one per stream.
const laterWakes = new Set<() => void>();
let laterTimer: ReturnType<typeof setTimeout> | undefined;
let laterDue = Infinity;

function wakeLater(wake: () => void, delayMs: number): void {
  laterWakes.add(wake);
  const due = performance.now() + delayMs;
  if (due >= laterDue) return;
  // the earliest due wake sets the time; the others go with it
  clearTimeout(laterTimer);
  laterDue = due;
  laterTimer = setTimeout(() => {
    laterTimer = undefined;
    laterDue = Infinity;
    const wakes = [...laterWakes];
    laterWakes.clear();
    for (const w of wakes) w();
  }, delayMs);
}

/**
 * Events of consecutive revisions queued for a watcher: the last revision's and, before them, the run they joined.
 * Watchers fanned out the same revisions share their runs, and a join adds one link, where a joined array was
 * copied whole for every revision (a thousand-event join cost half a million element copies, all old-space garbage).
 */
interface EventRun {
  readonly events: Event[];
  readonly before: EventRun | undefined;
  /** Events in the run, its links before included. */
  readonly count: number;
}

/** A watcher's result waiting in the stream (see WatchSink.send), turned into a message when taken. */
interface QueuedResult {
  readonly watcher: Watcher;
  run: EventRun;
  revision: number;
  readonly compactRevision: number;
}

/** A control response, or an event result (prev_kv is read when it is taken). */
type Pending = WatchResponse | QueuedResult;

const DONE: IteratorResult<WatchResponse> = Object.freeze({ value: undefined, done: true });
const NO_EVENTS: Event[] = [];

/**
 * One client stream: it reads requests and is itself the iterator of the responses. takeSync() lets the gRPC path
 * write a backlog in one turn (rpc/services.ts Backlogged).
 */
class ServerWatchStream implements WatchSink, AsyncIterableIterator<WatchResponse>, Backlogged<WatchResponse> {
  readonly #deps: WatchServerDeps;
  readonly #ws: WatchStream;
  /** Responses in production order. */
  readonly #out: Pending[] = [];
  /** The runs made with the events of the revision being fanned out, by the run they join (see #run). */
  readonly #joins = new Map<EventRun | undefined, EventRun>();
  #joinsOf: Event[] | undefined;
  /** The last run made an array (see #eventsOf), for the other watchers that share it. */
  #flatRun: EventRun | undefined;
  #flatEvents: Event[] = NO_EVENTS;
  /** The rest of a response split into fragments. */
  #fragments: WatchResponse[] = [];
  #pendingEvents = 0;
  #pendingControl = 0;
  #wake: (() => void) | undefined;
  #wakeScheduled = false;
  #lastWake = -Infinity;
  #eventsSinceWake = 0;
  /** A watcher was parked for want of room: the next take retries the parked ones. */
  #refused = false;
  #controlRoom: (() => void) | undefined;
  #error: unknown = undefined;
  #closed = false;
  /** Watchers that asked for progress notifications: true until an event response goes out in an interval. */
  readonly #progress = new Map<bigint, boolean>();
  readonly #prevKv = new Set<bigint>();
  readonly #fragment = new Set<bigint>();
  readonly #progressTimer: ReturnType<typeof setInterval>;

  constructor(deps: WatchServerDeps) {
    this.#deps = deps;
    this.#ws = new WatchStream(deps.watchable, this);
    this.#progressTimer = setInterval(() => this.#progressTick(), deps.progressNotifyIntervalMs);
  }

  /**
   * Queues a watcher's result. Events for a watcher whose previous result is still queued join it (whole revisions,
   * in order, as a catching-up watcher gets them), so a burst of writes costs the stream one response per watcher,
   * not one per revision. Past the stream's bounds (MAX_PENDING_*) the watcher is parked (false); a stream with
   * nothing queued takes any result, so a large one cannot be parked forever.
   */
  send(watcher: Watcher, events: Event[], revision: number, compactRevision: number): boolean {
    if (this.#closed) return true;
    const n = events.length;
    const watchers = this.#ws.size;
    const maxEvents = MAX_PENDING_EVENTS + PENDING_EVENTS_PER_WATCHER * watchers;
    if (this.#out.length > 0 && this.#pendingEvents + n > maxEvents) return this.#refuse();
    const joinable = n > 0 && compactRevision === 0;
    // each watcher's newest queued event result, which later events join while it waits
    const queued = joinable ? watcher.queued as QueuedResult | undefined : undefined;
    if (queued !== undefined && queued.run.count + n <= MAX_JOINED_EVENTS) {
      queued.run = this.#run(queued.run, events);
      queued.revision = revision;
      this.#pendingEvents += n;
      this.#deps.eventsPending.inc(n);
      return true;
    }
    // event results queued: all but the control responses
    if (this.#out.length - this.#pendingControl >= MAX_PENDING_RESPONSES + watchers) return this.#refuse();
    this.#pendingEvents += n;
    this.#deps.eventsPending.inc(n);
    const result: QueuedResult = { watcher, run: this.#run(undefined, events), revision, compactRevision };
    this.#out.push(result);
    // a progress mark or a compaction is not joined, nor anything after it (a client must not see it out of order)
    watcher.queued = joinable ? result : undefined;
    this.#signal();
    return true;
  }

  /**
   * The run of before and then events. Watchers fanned out the same revisions make the same runs, once: a thousand
   * watchers on one prefix keep one growing run between them.
   */
  #run(before: EventRun | undefined, events: Event[]): EventRun {
    if (this.#joinsOf !== events) {
      this.#joinsOf = events;
      this.#joins.clear();
    }
    let run = this.#joins.get(before);
    if (run === undefined) {
      this.#joins.set(before, run = { events, before, count: (before?.count ?? 0) + events.length });
    }
    return run;
  }

  /** A run's events in order, as one array (made once for the watchers taken in a row that share the run). */
  #eventsOf(run: EventRun): Event[] {
    if (run.before === undefined) return run.events;
    if (run === this.#flatRun) return this.#flatEvents;
    const all = new Array<Event>(run.count);
    let end = run.count;
    for (let r: EventRun | undefined = run; r !== undefined; r = r.before) {
      end -= r.events.length;
      for (let i = 0; i < r.events.length; i++) all[end + i] = r.events[i];
    }
    this.#flatRun = run;
    this.#flatEvents = all;
    return all;
  }

  /** Nothing is queued: the runs shared and the last one made an array are not kept by a stream that may stay idle. */
  #forgetRuns(): void {
    this.#joins.clear();
    this.#joinsOf = undefined;
    this.#flatRun = undefined;
    this.#flatEvents = NO_EVENTS;
  }

  #refuse(): false {
    this.#refused = true;
    return false;
  }

  /**
   * Anything taken makes room: watchers parked by a refusal are retried. A control response counts too: a catch-up
   * batch refused only because the "created" response was still queued would otherwise wait for an event response
   * that never comes (found by the fault suite: a watch from revision 1 over multi-key revisions stalled).
   */
  #retryRefused(): void {
    if (!this.#refused) return;
    this.#refused = false;
    this.#ws.drained();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#progressTimer);
    this.#ws.close();
    for (const p of this.#out) {
      if ("$typeName" in p) continue;
      this.#deps.eventsPending.dec(p.run.count);
      p.watcher.queued = undefined;
    }
    this.#out.length = 0;
    this.#forgetRuns();
    this.#signal();
    this.#controlRoom?.();
  }

  /** Ends the stream with err (sent to the client as the call's status). */
  fail(err: unknown): void {
    if (this.#closed || this.#error !== undefined) return;
    this.#error = err;
    this.#signal();
  }

  /** Reads requests until the client half-closes (the stream stays open, as etcd's) or the input fails. */
  async receive(reqs: AsyncIterable<WatchRequest>): Promise<void> {
    try {
      for await (const req of reqs) {
        if (this.#closed) return;
        this.#handle(req);
        if (this.#pendingControl >= MAX_PENDING_CONTROL_RESPONSES) {
          await new Promise<void>((resolve) => this.#controlRoom = resolve);
          this.#controlRoom = undefined;
        }
      }
    } catch (err) {
      this.fail(err);
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<WatchResponse>> {
    const value = this.takeSync();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.#error !== undefined) {
      const err = this.#error;
      this.close();
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => this.#wake = () => this.next().then(resolve, reject));
  }

  return(): Promise<IteratorResult<WatchResponse>> {
    this.close();
    return Promise.resolve(DONE);
  }

  /** The next response, if one is ready. */
  takeSync(): WatchResponse | undefined {
    if (this.#fragments.length > 0) return this.#fragments.shift();
    const next = this.#out.shift();
    if (next === undefined) {
      this.#forgetRuns();
      return undefined;
    }
    if ("$typeName" in next) {
      if (this.#pendingControl-- === MAX_PENDING_CONTROL_RESPONSES) this.#controlRoom?.();
      this.#retryRefused();
      return next;
    }
    if (next.watcher.queued === next) next.watcher.queued = undefined;
    const n = next.run.count;
    this.#pendingEvents -= n;
    this.#eventsSinceWake += n;
    this.#retryRefused();
    this.#deps.eventsPending.dec(n);
    this.#deps.eventsSent.inc(n);
    const resp = this.#eventResponse(next);
    if (this.#fragment.size === 0 || !this.#fragment.has(next.watcher.id)) return resp;
    this.#fragments = [...fragments(resp, this.#deps.maxRequestBytes)];
    return this.#fragments.shift();
  }

  /**
   * Wakes the reader in the event loop's check phase rather than at once, so requests already read (puts) are
   * applied first. A stream whose last wake took many events also waits a while since that wake (see
   * DELIVERY_BATCH_MS): what a stream of writes produces then goes out joined (see send), in fewer and larger
   * responses, cheaper for the server and the client, and the writes get the CPU they need. A quiet stream is woken
   * without delay.
   */
  #signal(): void {
    if (this.#wake === undefined || this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    const pause = Math.min(DELIVERY_BATCH_MS, this.#eventsSinceWake * BATCH_MS_PER_EVENT);
    const wait = this.#lastWake + pause - performance.now();
    if (wait > 0) wakeLater(this.#wakeNow, wait);
    else setImmediate(this.#wakeNow);
  }

  readonly #wakeNow = () => {
    this.#wakeScheduled = false;
    this.#lastWake = performance.now();
    this.#eventsSinceWake = 0;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  };

  /** Queues a control response: created/canceled as given, the header at revision rev. */
  #control(rev: number, watchId: bigint, fields: Partial<WatchResponse> = {}): void {
    this.#pendingControl++;
    this.#out.push({
      $typeName: "etcdserverpb.WatchResponse",
      header: this.#deps.header(rev),
      watchId,
      created: false,
      canceled: false,
      compactRevision: 0n,
      cancelReason: "",
      fragment: false,
      events: [],
      ...fields,
    });
    this.#signal();
  }

  #handle(req: WatchRequest): void {
    const u = req.requestUnion;
    switch (u.case) {
      case "createRequest":
        return this.#create(u.value);
      case "cancelRequest": {
        const id = u.value.watchId;
        try {
          this.#ws.cancel(id);
        } catch (err) {
          if (err instanceof MvccError) return; // etcd answers a cancel of an unknown watcher with nothing
          throw err;
        }
        this.#progress.delete(id);
        this.#prevKv.delete(id);
        this.#fragment.delete(id);
        return this.#control(this.#ws.rev, id, { canceled: true });
      }
      case "progressRequest":
        // not any one watcher's: clients hand it to all of the stream's watchers
        return this.#control(this.#ws.rev, INVALID_WATCH_ID);
    }
    // an unknown request kind is ignored, as etcd ignores it
  }

  #create(c: WatchCreateRequest): void {
    // "\0" is the smallest key; a range_end of "\0" means every key from key on
    const key = c.key.length === 0 ? new Uint8Array([0]) : c.key;
    let end: Uint8Array | undefined = c.rangeEnd.length === 0 ? undefined : c.rangeEnd;
    if (end !== undefined && end.length === 1 && end[0] === 0) end = EMPTY_BYTES;
    const filters = {
      noPut: c.filters.includes(WatchCreateRequest_FilterType.NOPUT),
      noDelete: c.filters.includes(WatchCreateRequest_FilterType.NODELETE),
    };
    const wsRev = this.#ws.rev;
    const startRev = c.startRevision === 0n ? wsRev + 1 : Number(c.startRevision);
    let id = INVALID_WATCH_ID;
    let cancelReason = "";
    try {
      id = this.#ws.watch(c.watchId, key, end, startRev, filters);
      if (c.progressNotify) this.#progress.set(id, true);
      if (c.prevKv) this.#prevKv.add(id);
      if (c.fragment) this.#fragment.add(id);
    } catch (err) {
      if (!(err instanceof MvccError)) throw err;
      cancelReason = err.message;
    }
    this.#control(wsRev, id, { created: true, canceled: cancelReason !== "", cancelReason });
  }

  /** etcd's progress ticker: watchers that got no events since the last tick are sent the current revision. */
  #progressTick(): void {
    for (const [id, idle] of this.#progress) {
      if (idle) this.#ws.requestProgress(id);
      this.#progress.set(id, true);
    }
  }

  #eventResponse(r: QueuedResult): WatchResponse {
    const id = r.watcher.id;
    let events = this.#eventsOf(r.run);
    if (events.length > 0 && this.#prevKv.size > 0 && this.#prevKv.has(id)) {
      events = events.map((ev) => this.#withPrevKv(ev));
    }
    if (events.length > 0 && this.#progress.size > 0 && this.#progress.has(id)) {
      this.#progress.set(id, false);
    }
    return {
      $typeName: "etcdserverpb.WatchResponse",
      header: this.#deps.header(r.revision),
      watchId: id,
      created: false,
      canceled: r.compactRevision !== 0,
      compactRevision: BigInt(r.compactRevision),
      cancelReason: "",
      fragment: false,
      events,
    };
  }

  /** The key as it was just before the event, unless the event created it (etcd's sendLoop). */
  #withPrevKv(ev: Event): Event {
    const kv = ev.kv!;
    if (ev.type === Event_EventType.PUT && kv.createRevision === kv.modRevision) return ev;
    try {
      const prev = this.#deps.watchable.kv.range(kv.key, undefined, { rev: Number(kv.modRevision) - 1 }).kvs[0];
      if (prev !== undefined) return { ...ev, prevKv: prev };
    } catch {
      // compacted meanwhile: the event goes without it, as etcd's
    }
    return ev;
  }
}

/**
 * etcd's sendFragments: a response of at least maxBytes with two or more events goes out as several, each under
 * maxBytes unless it holds a single event, all but the last marked `fragment`.
 */
export function* fragments(resp: WatchResponse, maxBytes: number): Generator<WatchResponse> {
  const events = resp.events;
  if (events.length < 2) return yield resp;
  const fieldSizes = events.map((ev) => bytesFieldSize(toBinary(EventSchema, ev).length));
  const bare = toBinary(WatchResponseSchema, { ...resp, events: [] }).length;
  if (bare + fieldSizes.reduce((a, b) => a + b, 0) < maxBytes) return yield resp;
  const bareFragment = toBinary(WatchResponseSchema, { ...resp, events: [], fragment: true }).length;
  let i = 0;
  while (i < events.length) {
    const start = i;
    let size = bareFragment;
    while (i < events.length && (i === start || size + fieldSizes[i] < maxBytes)) size += fieldSizes[i++];
    yield { ...resp, events: events.slice(start, i), fragment: i < events.length };
  }
}
