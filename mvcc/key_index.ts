/**
 * keyIndex: the revision history of one key, as etcd keeps it. Each generation runs from a creation to a
 * deletion (the tombstone, its last revision); the last generation is the live one (empty after a delete).
 *
 * Each revision entry carries its immutable KeyValue so reads need no backend lookup or decoding. Tombstone
 * entries carry a KeyValue with only key and mod_revision set (version 0), like etcd's delete events.
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { revGreater, type Revision, revKey } from "./revision.ts";

/** A revision of a key and its KeyValue (decoded when first read, for a restored one: see StoredRev). */
export interface IndexRev extends Revision {
  readonly kv: KeyValue;
}

/** What a read asks of a key's history in the index: a KeyIndex, or a restored key's one revision (StoredRev). */
export interface KeyHistory {
  readonly key: Uint8Array;
  /** The newest revision while the key is live (not deleted), if it has any. */
  readonly live: IndexRev | undefined;
  /** The revision visible at atRev with its generation's creation and the version at that point, or null. */
  get(atRev: number): GetResult | null;
  /** The revision visible at atRev, without computing the version (the hot read path). */
  getRev(atRev: number): IndexRev | null;
  /** Revisions since rev (main >= rev), keeping only the last revision of each main revision. */
  since(rev: number): IndexRev[];
  /** Calls fn with every revision kept, oldest first. */
  forEachRev(fn: (r: IndexRev) => void): void;
}

export interface Generation {
  /** Number of revisions put in this generation (including its tombstone). */
  ver: number;
  created: Revision;
  revs: IndexRev[];
}

export interface GetResult {
  rev: IndexRev;
  created: Revision;
  ver: number;
}

const NO_REV: Revision = Object.freeze({ main: 0, sub: 0 });

function newGeneration(): Generation {
  return { ver: 0, created: NO_REV, revs: [] };
}

export class KeyIndex implements KeyHistory {
  readonly key: Uint8Array;
  modified: Revision = NO_REV;
  /**
   * The generations, or null while the key has one revision and no delete (most keys: each one restored or newly
   * put): that revision is then #latest, its generation's creation #created and version #ver, and no arrays are made
   * until a second revision, a delete or a question about its history needs them (a restart of 130k keys: ~390k
   * objects fewer to make and keep).
   */
  #gens: Generation[] | null = [];
  #created: Revision = NO_REV;
  #ver = 0;
  /** The newest entry, and whether it is a tombstone: answers reads at or after it without a search. */
  #latest: IndexRev | null = null;
  #deleted = false;

  constructor(key: Uint8Array) {
    this.key = key;
  }

  /** The generations, oldest first (made now if the key has kept its one revision without them). */
  get generations(): Generation[] {
    if (this.#gens === null) this.#gens = [{ ver: this.#ver, created: this.#created, revs: [this.#latest!] }];
    return this.#gens;
  }

  /** The newest revision while the key is live (not deleted), if it has any. */
  get live(): IndexRev | undefined {
    return this.#deleted || this.#latest === null ? undefined : this.#latest;
  }

  /** Calls fn with every revision kept, oldest first. */
  forEachRev(fn: (r: IndexRev) => void): void {
    if (this.#gens === null) return fn(this.#latest!);
    for (const g of this.#gens) for (const r of g.revs) fn(r);
  }

  put(main: number, sub: number, kv: KeyValue): void {
    this.putRev({ main, sub, kv });
  }

  putRev(rev: IndexRev): void {
    if (!revGreater(rev, this.modified)) {
      throw new Error(
        `mvcc: 'put' with an unexpected smaller revision ${rev.main}/${rev.sub} <= ${this.modified.main}`,
      );
    }
    if (this.#gens !== null && this.#gens.length === 0) {
      // a new key's first revision: no generation arrays yet
      this.#gens = null;
      this.#created = rev;
      this.#ver = 1;
    } else {
      const gens = this.generations;
      const g = gens[gens.length - 1];
      if (g.revs.length === 0) {
        g.created = rev;
        g.revs = [rev];
      } else {
        g.revs.push(rev);
      }
      g.ver++;
    }
    this.modified = rev;
    this.#latest = rev;
    this.#deleted = false;
  }

  /** Initializes an empty keyIndex from the latest revision found on restore. */
  restore(created: Revision, modified: IndexRev, ver: number): void {
    if (this.#gens === null || this.#gens.length !== 0) {
      throw new Error("mvcc: 'restore' got an unexpected non-empty generations");
    }
    this.modified = modified;
    this.#latest = modified;
    this.#gens = null;
    this.#created = created;
    this.#ver = ver;
  }

  /** Puts a tombstone revision and starts a new empty generation; false if the key is not live. */
  tombstone(main: number, sub: number, kv: KeyValue): boolean {
    if (this.isEmpty()) throw new Error("mvcc: 'tombstone' got an unexpected empty keyIndex");
    if (this.#deleted || this.#latest === null) return false;
    this.put(main, sub, kv);
    this.generations.push(newGeneration());
    this.#deleted = true;
    return true;
  }

  /** The revision visible at atRev with its generation's creation and the version at that point, or null. */
  get(atRev: number): GetResult | null {
    const latest = this.#latest;
    if (latest !== null && atRev >= latest.main) {
      if (this.#deleted) return null;
      if (this.#gens === null) return { rev: latest, created: this.#created, ver: this.#ver };
      const lg = this.#gens[this.#gens.length - 1];
      return { rev: latest, created: lg.created, ver: lg.ver };
    }
    if (this.#gens === null) return null; // before its one revision
    const g = this.findGeneration(atRev);
    if (g === null) return null;
    const revs = g.revs;
    for (let n = revs.length - 1; n >= 0; n--) {
      if (revs[n].main <= atRev) return { rev: revs[n], created: g.created, ver: g.ver - (revs.length - n - 1) };
    }
    return null;
  }

  /** The entry visible at atRev, without computing the version (the hot read path). */
  getRev(atRev: number): IndexRev | null {
    const latest = this.#latest;
    if (latest !== null && atRev >= latest.main) return this.#deleted ? null : latest;
    if (this.#gens === null) return null; // before its one revision
    const g = this.findGeneration(atRev);
    if (g === null) return null;
    const revs = g.revs;
    for (let n = revs.length - 1; n >= 0; n--) {
      if (revs[n].main <= atRev) return revs[n];
    }
    return null;
  }

  /** Revisions since rev (main >= rev), keeping only the last revision of each main revision. */
  since(rev: number): IndexRev[] {
    if (this.isEmpty()) throw new Error("mvcc: 'since' got an unexpected empty keyIndex");
    if (this.#gens === null) return this.#latest!.main >= rev ? [this.#latest!] : [];
    const since: Revision = { main: rev, sub: 0 };
    let gi = this.generations.length - 1;
    for (; gi > 0; gi--) {
      const g = this.generations[gi];
      if (g.revs.length === 0) continue;
      if (revGreater(since, g.created)) break;
    }
    const out: IndexRev[] = [];
    let last = 0;
    for (; gi < this.generations.length; gi++) {
      for (const r of this.generations[gi].revs) {
        if (revGreater(since, r)) continue;
        if (r.main === last) {
          // Only the last change of one main revision matters (etcd's rule for txns touching a key twice).
          out[out.length - 1] = r;
          continue;
        }
        out.push(r);
        last = r.main;
      }
    }
    return out;
  }

  /**
   * Drops revisions older than the one visible at atRev (keeping the tombstone-free latest <= atRev), and whole
   * generations ended by a tombstone <= atRev. The dropped revisions, which the backend must delete too, are
   * appended to `removed`.
   */
  compact(atRev: number, removed: IndexRev[]): void {
    if (this.isEmpty()) throw new Error("mvcc: 'compact' got an unexpected empty keyIndex");
    if (this.#gens === null) return; // its one revision is the one visible at atRev or after it: kept
    let [genIdx, revIndex] = this.#doCompact(atRev, null);
    for (let i = 0; i < genIdx; i++) for (const r of this.generations[i].revs) removed.push(r);
    const g = this.generations[genIdx];
    if (g.revs.length !== 0) {
      if (revIndex > 0) {
        for (let i = 0; i < revIndex; i++) removed.push(g.revs[i]);
        g.revs = g.revs.slice(revIndex);
      }
      // Only the tombstone is left of a finished generation: it is not needed any more.
      if (g.revs.length === 1 && genIdx !== this.generations.length - 1) {
        removed.push(g.revs[0]);
        genIdx++;
      }
    }
    if (genIdx > 0) this.#gens = this.generations.slice(genIdx);
  }

  /** The revisions a compaction at atRev would keep, added to `available`, without modifying the index. */
  keep(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) return;
    if (this.#gens === null) {
      const r = this.#latest!;
      if (r.main <= atRev) available.add(revKey(r.main, r.sub));
      return;
    }
    const [genIdx, revIndex] = this.#doCompact(atRev, available);
    const g = this.generations[genIdx];
    if (g.revs.length !== 0 && revIndex === g.revs.length - 1 && genIdx !== this.generations.length - 1) {
      available.delete(revKey(g.revs[revIndex].main, g.revs[revIndex].sub));
    }
  }

  #doCompact(atRev: number, available: Set<string> | null): [number, number] {
    let genIdx = 0;
    let g = this.generations[0];
    // Skip generations whose tombstone is at or below atRev.
    while (genIdx < this.generations.length - 1) {
      if (g.revs[g.revs.length - 1].main > atRev) break;
      genIdx++;
      g = this.generations[genIdx];
    }
    let revIndex = -1;
    for (let i = g.revs.length - 1; i >= 0; i--) {
      if (g.revs[i].main <= atRev) {
        available?.add(revKey(g.revs[i].main, g.revs[i].sub));
        revIndex = i;
        break;
      }
    }
    return [genIdx, revIndex];
  }

  isEmpty(): boolean {
    const gens = this.#gens;
    return gens !== null && gens.length === 1 && gens[0].revs.length === 0;
  }

  /** The generation holding the revision visible at rev, or null if the key did not exist then. */
  findGeneration(rev: number): Generation | null {
    const lastg = this.generations.length - 1;
    for (let cg = lastg; cg >= 0; cg--) {
      const g = this.generations[cg];
      if (g.revs.length === 0) continue;
      if (cg !== lastg && g.revs[g.revs.length - 1].main <= rev) return null; // deleted by then
      if (g.revs[0].main <= rev) return g;
    }
    return null;
  }
}
