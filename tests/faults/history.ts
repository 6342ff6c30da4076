// The history of a fault run, as Jepsen records one: each client operation's invocation and completion with their
// times, its input and what it returned. An operation that timed out or failed in a way that does not say whether it
// was applied (the member died, the leader changed) completes as "unknown": the checkers treat it as maybe applied,
// at any time after its invocation. An error that proves it was not applied (a compare that failed is an answer, not
// an error) drops the operation.

/** What a client asked of one key (a register). Values are unique per write, so a read names the write it saw. */
export type RegisterInput =
  | { op: "read" }
  | { op: "write"; value: string }
  | { op: "cas"; expect: string | null; value: string };

/** What came back: a read's value (null: no key), a CAS's outcome; a write returns nothing but its revision. */
export type RegisterOutput = { value: string | null } | { ok: boolean } | Record<never, never>;

export interface Operation {
  id: number;
  client: number;
  key: string;
  input: RegisterInput;
  /** Invocation time, ms (performance.now() of the recording process). */
  call: number;
  /** Completion time, ms; undefined when the outcome is unknown (timed out, or the member failed). */
  ret?: number;
  output?: RegisterOutput;
  /** The store revision of an acknowledged write (the response header's), for the lost-write check. */
  revision?: number;
}

/** An operation in flight: complete it exactly once. */
export interface Pending {
  ok(output: RegisterOutput, revision?: number): void;
  /** The outcome is unknown: maybe applied. */
  unknown(): void;
  /** Certainly not applied: the operation is dropped from the history. */
  notApplied(): void;
}

export class HistoryRecorder {
  readonly #ops: Operation[] = [];
  readonly #dropped = new Set<number>();
  #nextId = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  invoke(client: number, key: string, input: RegisterInput): Pending {
    const op: Operation = { id: this.#nextId++, client, key, input, call: this.now() };
    this.#ops.push(op);
    let done = false;
    const complete = () => {
      if (done) throw new Error(`operation ${op.id} completed twice`);
      done = true;
    };
    return {
      ok: (output, revision) => {
        complete();
        op.ret = this.now();
        op.output = output;
        if (revision !== undefined) op.revision = revision;
      },
      unknown: () => complete(),
      notApplied: () => {
        complete();
        this.#dropped.add(op.id);
      },
    };
  }

  /** The operations recorded so far, not-applied ones left out; pending ones count as unknown. */
  operations(): Operation[] {
    return this.#ops.filter((op) => !this.#dropped.has(op.id)).map((op) => ({ ...op }));
  }
}

/** One line per operation, in invocation order, as Jepsen prints a history. */
export function formatHistory(ops: Operation[]): string {
  return [...ops].sort((a, b) => a.call - b.call).map(formatOperation).join("\n");
}

export function formatOperation(op: Operation): string {
  const i = op.input;
  const input = i.op === "read" ? "read" : i.op === "write" ? `write ${i.value}` : `cas ${i.expect} -> ${i.value}`;
  const out = op.ret === undefined ? "unknown" : `${outputText(op.output)} at ${op.ret.toFixed(1)}`;
  const rev = op.revision === undefined ? "" : ` (rev ${op.revision})`;
  return `#${op.id} client ${op.client} ${op.key}: ${input} at ${op.call.toFixed(1)} -> ${out}${rev}`;
}

function outputText(o: RegisterOutput | undefined): string {
  if (o === undefined) return "ok";
  if ("value" in o) return `ok ${o.value}`;
  if ("ok" in o) return o.ok ? "ok (swapped)" : "ok (compare failed)";
  return "ok";
}

/** Writes the store acknowledged (with their revision): puts, and compare-and-sets that swapped. */
export function acknowledgedWrites(ops: Operation[]): (Operation & { input: { value: string }; revision: number })[] {
  return ops.filter((op): op is Operation & { input: { value: string }; revision: number } => {
    if (op.ret === undefined || op.revision === undefined || op.input.op === "read") return false;
    return op.input.op === "write" || (op.output !== undefined && "ok" in op.output && op.output.ok);
  });
}

/**
 * Settles unknown writes with the store's own history, as etcd's robustness tests patch theirs: a write or CAS whose
 * value the store never held was not applied and goes; one it held stays, applied at a time still unknown. (Values
 * are unique per write.) Without this, every write lost in a crash stays open to the end of the history, and the
 * search's configurations grow with 2^(open writes).
 */
export function dropUnapplied(ops: Operation[], heldValues: Set<string>): Operation[] {
  return ops.filter((op) => op.ret !== undefined || op.input.op === "read" || heldValues.has(op.input.value));
}
