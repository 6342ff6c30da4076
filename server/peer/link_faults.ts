// Link faults for fault-injection tests (etcd's robustness tests cut links with a proxy; on loopback a proxy cannot
// tell which peer a connection comes from, so the transport applies the faults itself). DETCD_LINK_FAULTS=PATH names
// a file of rules, one per line, read every 100 ms:
//   drop-to <id|*> [probability]    messages to the peer (hex member ID) are lost
//   drop-from <id|*> [probability]  messages from the peer are lost
//   delay-to <id|*> <ms>            messages to the peer leave ms later
// An empty or missing file is a healthy network. Unset, nothing is read and a message costs one check.
import type { NodeId } from "../../raft/types.ts";
import { Rand } from "../../raft/rand.ts";
import type { Logger } from "../logger.ts";

const POLL_MS = 100;

interface Rule {
  kind: "drop-to" | "drop-from" | "delay-to";
  peer: NodeId | "*";
  /** drop: the probability; delay: ms */
  value: number;
}

export class LinkFaults {
  #rules: Rule[] = [];
  /** The file's content last read ("" for none). */
  #text = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Lossy links drop by a seeded sequence. */
  readonly #rand = new Rand(0x2545f491);

  private constructor(private readonly path: string, private readonly logger: Logger) {}

  /** The faults DETCD_LINK_FAULTS names, watched from now on; undefined when it is unset. */
  static fromEnv(logger: Logger): LinkFaults | undefined {
    let path: string | undefined;
    try {
      path = Deno.env.get("DETCD_LINK_FAULTS");
    } catch {
      return undefined; // no --allow-env: no faults
    }
    if (path === undefined || path === "") return undefined;
    const f = new LinkFaults(path, logger);
    f.#load();
    f.#timer = setInterval(() => f.#load(), POLL_MS);
    Deno.unrefTimer(f.#timer);
    return f;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  dropTo(peer: NodeId): boolean {
    return this.#drop("drop-to", peer);
  }

  dropFrom(peer: NodeId): boolean {
    return this.#drop("drop-from", peer);
  }

  /** ms to hold a message to `peer` back (0: none). */
  delayTo(peer: NodeId): number {
    const r = this.#rule("delay-to", peer);
    return r === undefined ? 0 : r.value;
  }

  #drop(kind: Rule["kind"], peer: NodeId): boolean {
    const r = this.#rule(kind, peer);
    return r !== undefined && (r.value >= 1 || this.#rand.float() < r.value);
  }

  #rule(kind: Rule["kind"], peer: NodeId): Rule | undefined {
    for (const r of this.#rules) if (r.kind === kind && (r.peer === "*" || r.peer === peer)) return r;
    return undefined;
  }

  #load(): void {
    let text = "";
    try {
      text = Deno.readTextFileSync(this.path);
    } catch { /* missing: a healthy network */ }
    if (text === this.#text) return;
    this.#text = text;
    const rules: Rule[] = [];
    for (const line of text.split("\n")) {
      const [kind, peer, value] = line.trim().split(/\s+/);
      if (kind === undefined || kind === "") continue;
      if (kind !== "drop-to" && kind !== "drop-from" && kind !== "delay-to") {
        this.logger.warn("ignored link fault rule", { rule: line });
        continue;
      }
      rules.push({
        kind,
        peer: peer === "*" ? "*" : BigInt(`0x${peer}`),
        value: value === undefined ? (kind === "delay-to" ? 0 : 1) : Number(value),
      });
    }
    this.#rules = rules;
    this.logger.warn("link faults changed", { rules: text.trim().split("\n").filter((l) => l !== "") });
  }
}
