/**
 * treeIndex: key -> keyIndex, ordered by key bytes (a B+ tree), answering "which revision of which keys is
 * visible at revision R" for single keys and ranges.
 *
 * Ranges follow etcd: `end` undefined is the single key `key`; an empty `end` means every key >= key.
 */
import type { KeyValue } from "../rpc/gen/mvccpb/kv_pb.ts";
import { BTree } from "./btree.ts";
import { type GetResult, type IndexRev, type KeyHistory, KeyIndex } from "./key_index.ts";
import { revKey } from "./revision.ts";
import { StoredRev } from "./stored_rev.ts";

export class TreeIndex {
  /** A key's KeyIndex, or a restored key's one revision standing in for it until a write (see StoredRev). */
  #tree = new BTree<KeyIndex | StoredRev>();

  /** Number of keys with any retained history. */
  get size(): number {
    return this.#tree.size;
  }

  /** The key's KeyIndex, for a write: a restored key's is made now from its one revision, and takes its place. */
  keyIndex(key: Uint8Array): KeyIndex | undefined {
    const e = this.#tree.get(key);
    if (!(e instanceof StoredRev)) return e;
    const ki = new KeyIndex(e.key);
    const { created, ver } = e.created();
    ki.restore(created, e, ver);
    this.#tree.set(e.key, ki);
    return ki;
  }

  insert(ki: KeyIndex): void {
    this.#tree.set(ki.key, ki);
  }

  /** The key's entry, or the restored revision `make(key)` gives, inserted (one descent of the tree). */
  entryOrInsert(key: Uint8Array, make: (key: Uint8Array) => StoredRev): KeyIndex | StoredRev {
    return this.#tree.getOrInsert(key, make);
  }

  get(key: Uint8Array, atRev: number): GetResult | null {
    return this.#tree.get(key)?.get(atRev) ?? null;
  }

  put(key: Uint8Array, main: number, sub: number, kv: KeyValue): void {
    let ki = this.keyIndex(key);
    if (ki === undefined) {
      ki = new KeyIndex(key);
      this.#tree.set(key, ki);
    }
    ki.put(main, sub, kv);
  }

  /** Tombstones a live key; false if the key is missing or already deleted. */
  tombstone(key: Uint8Array, main: number, sub: number, kv: KeyValue): boolean {
    const ki = this.keyIndex(key);
    return ki !== undefined && ki.tombstone(main, sub, kv);
  }

  /** Visits the histories of the keys in the range, for reads. Stops when fn returns false. */
  visit(key: Uint8Array, end: Uint8Array | undefined, fn: (h: KeyHistory) => boolean | void): void {
    if (end === undefined) {
      const ki = this.#tree.get(key);
      if (ki !== undefined) fn(ki);
      return;
    }
    this.#tree.range(key, end.length === 0 ? undefined : end, (_k, ki) => fn(ki));
  }

  /**
   * Revisions visible at atRev in key order: at most `limit` entries (limit <= 0: all) and the count of all
   * matching keys.
   */
  revisions(
    key: Uint8Array,
    end: Uint8Array | undefined,
    atRev: number,
    limit: number,
  ): { revs: IndexRev[]; count: number } {
    const revs: IndexRev[] = [];
    let count = 0;
    this.visit(key, end, (ki) => {
      const r = ki.getRev(atRev);
      if (r === null) return;
      count++;
      if (limit <= 0 || revs.length < limit) revs.push(r);
    });
    return { revs, count };
  }

  /** Number of keys visible at atRev in the range. */
  countRevisions(key: Uint8Array, end: Uint8Array | undefined, atRev: number): number {
    let count = 0;
    this.visit(key, end, (ki) => {
      if (ki.getRev(atRev) !== null) count++;
    });
    return count;
  }

  /** Every revision >= rev of keys in the range, ordered by revision (for watchers catching up). */
  rangeSince(key: Uint8Array, end: Uint8Array | undefined, rev: number): IndexRev[] {
    const out: IndexRev[] = [];
    this.visit(key, end, (ki) => {
      for (const r of ki.since(rev)) out.push(r);
    });
    if (end !== undefined) out.sort((a, b) => a.main - b.main || a.sub - b.sub);
    return out;
  }

  /** Compacts every keyIndex at rev, dropping ones left empty; returns the dropped revisions (unordered). */
  compact(rev: number): IndexRev[] {
    const removed: IndexRev[] = [];
    const emptied: Uint8Array[] = [];
    this.#tree.forEach((k, e) => {
      // a restored key's one revision is the one visible at rev or after it: kept
      if (e instanceof StoredRev) return;
      e.compact(rev, removed);
      if (e.isEmpty()) emptied.push(k);
    });
    for (const k of emptied) this.#tree.delete(k);
    return removed;
  }

  /** The revisions a compaction at rev would keep, without compacting. */
  keep(rev: number): Set<string> {
    const available = new Set<string>();
    this.#tree.forEach((_k, e) => {
      if (e instanceof KeyIndex) e.keep(rev, available);
      else if (e.main <= rev) available.add(revKey(e.main, e.sub));
    });
    return available;
  }

  /** Every retained revision of every key, unordered. */
  allRevisions(): IndexRev[] {
    const out: IndexRev[] = [];
    this.#tree.forEach((_k, ki) => {
      ki.forEachRev((r) => out.push(r));
    });
    return out;
  }

  /** Visits every key's history in key order. */
  forEach(fn: (h: KeyHistory) => void): void {
    this.#tree.forEach((_k, h) => fn(h));
  }
}
