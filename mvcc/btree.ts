/**
 * An in-memory B+ tree ordered map keyed by byte strings. Leaves are doubly linked so ordered range scans walk
 * leaves directly instead of re-descending. Deletes only drop empty nodes (no rebalancing): keys stay correct and
 * lookups stay logarithmic in the number of nodes, which is enough for MVCC workloads.
 */
import { compareBytes } from "./bytes.ts";

const MAX_KEYS = 64;

/**
 * Where the keys a tree keeps as numbers are (see BTree's getOrInsert): a restart's index keeps ~150k restored keys
 * so, as the positions of their revisions in the replayed log, instead of a view each (~104 bytes, moved by the
 * collector once or twice while the index is built).
 */
export interface KeySource {
  /** How key `at` orders against `key`, as compareBytes. */
  compareTo(at: number, key: Uint8Array): number;
  /** How key `a` orders against key `b`. */
  compare(a: number, b: number): number;
  /** Key `at`'s bytes (a view made for the caller). */
  key(at: number): Uint8Array;
}

/** A key as a tree keeps it: its bytes, or a number its KeySource knows. */
type StoredKey = Uint8Array | number;

class Leaf<V> {
  keys: StoredKey[] = [];
  vals: V[] = [];
  prev: Leaf<V> | null = null;
  next: Leaf<V> | null = null;
}

class Inner<V> {
  /** keys[i] is a lower bound of every key in children[i]; keys[0] is never consulted. */
  keys: StoredKey[] = [];
  children: Node<V>[] = [];
}

type Node<V> = Leaf<V> | Inner<V>;

/** How a kept key orders against `key` (a number: the KeySource's). */
function cmp(stored: StoredKey, key: StoredKey, src: KeySource | null): number {
  if (typeof stored === "number") {
    return typeof key === "number" ? src!.compare(stored, key) : src!.compareTo(stored, key);
  }
  return typeof key === "number" ? -src!.compareTo(key, stored) : compareBytes(stored, key);
}

/** First index whose key is >= key. */
function lowerBound(keys: StoredKey[], key: StoredKey, src: KeySource | null): number {
  let lo = 0, hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(keys[mid], key, src) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the child that may hold key: the last i >= 0 with i == 0 or keys[i] <= key. */
function childIndex(keys: StoredKey[], key: StoredKey, src: KeySource | null): number {
  let lo = 1, hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(keys[mid], key, src) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

export class BTree<V> {
  #root: Node<V> = new Leaf<V>();
  #size = 0;
  // Out-parameters of the recursive insert, kept on the instance to avoid allocating per call.
  #old: V | undefined = undefined;
  #split: Node<V> | null = null;
  /** Set by getOrInsert for its insert: an existing value is kept, and a missing one made. */
  #make: ((key: StoredKey) => V) | null = null;
  #made: V | undefined = undefined;
  /**
   * The rightmost leaf, for appends past the greatest key (revision keys, sequential loads, a restart's replay) that
   * need no descent. Every insert that may split sets it again; a leaf leaves the tree only once empty, so a non-empty
   * one is still in it (clear() forgets it).
   */
  #rightmost: Leaf<V> | null = null;
  /**
   * The leaf the last insert went to. Keys that arrive nearly in order but not past the greatest key (a restart's
   * replay of a load whose writers take turns, a load between existing keys) mostly land in it again, found with two
   * comparisons instead of a descent. Trusted only while the tree has had no delete since it was made or cleared: a
   * leaf's first key is then exactly the separator that routes to it, so a key from a leaf's first key up to the next
   * leaf's belongs to that leaf. No leaf leaves such a tree, so the finger is in it.
   */
  #finger: Leaf<V> | null = null;
  #deleted = false;
  constructor(private readonly src: KeySource | null = null) {}

  /** A kept key as bytes. */
  #bytes(k: StoredKey): Uint8Array {
    return typeof k === "number" ? this.src!.key(k) : k;
  }

  get size(): number {
    return this.#size;
  }

  get(key: Uint8Array): V | undefined {
    // past the greatest key (a new key in an ascending load or replay): not there, without a descent
    const r = this.#rightmost;
    if (r !== null && r.keys.length > 0 && cmp(r.keys[r.keys.length - 1], key, this.src) < 0) return undefined;
    const leaf = this.#fingerHolding(key) ?? this.#leafFor(key);
    const i = lowerBound(leaf.keys, key, this.src);
    return i < leaf.keys.length && cmp(leaf.keys[i], key, this.src) === 0 ? leaf.vals[i] : undefined;
  }

  /** Inserts or replaces; returns the previous value. The tree keeps a reference to `key`: do not mutate it. */
  set(key: Uint8Array, val: V): V | undefined {
    const r = this.#rightmostTaking(key);
    if (r !== null) {
      r.keys.push(key);
      r.vals.push(val);
      this.#size++;
      return undefined;
    }
    this.#old = undefined;
    const f = this.#fingerTaking(key);
    if (f !== null) this.#insert(f, key, val);
    else this.#descend(key, val);
    return this.#old;
  }

  /**
   * The value under `key`, or, when there is none, `make(key)`'s, inserted: one descent where get() then set() take
   * two (a restart's index inserts ~100k new keys). The tree keeps a reference to `key`: do not mutate it. A number
   * is its KeySource's key, kept as that number (no view made, none kept).
   */
  getOrInsert(key: StoredKey, make: (key: StoredKey) => V): V {
    const r = this.#rightmostTaking(key);
    if (r !== null) {
      const val = make(key);
      r.keys.push(key);
      r.vals.push(val);
      this.#size++;
      return val;
    }
    this.#old = this.#made = undefined;
    this.#make = make;
    try {
      const f = this.#fingerTaking(key);
      if (f !== null) this.#insert(f, key, undefined as V);
      else this.#descend(key, undefined as V);
    } finally {
      this.#make = null;
    }
    return this.#old ?? this.#made!;
  }

  /** The rightmost leaf when `key` is past the greatest key and fits there: an append that needs no descent. */
  #rightmostTaking(key: StoredKey): Leaf<V> | null {
    const r = this.#rightmost;
    return r !== null && r.keys.length > 0 && r.keys.length < MAX_KEYS &&
        cmp(r.keys[r.keys.length - 1], key, this.src) < 0
      ? r
      : null;
  }

  /** The finger leaf when `key` belongs to it (see #finger). */
  #fingerHolding(key: StoredKey): Leaf<V> | null {
    const f = this.#finger;
    if (f === null || this.#deleted || f.keys.length === 0 || cmp(f.keys[0], key, this.src) > 0) return null;
    const next = f.next;
    return next === null || (next.keys.length > 0 && cmp(next.keys[0], key, this.src) > 0) ? f : null;
  }

  /** The finger leaf when `key` belongs to it and it has room for one more: an insert there splits nothing. */
  #fingerTaking(key: StoredKey): Leaf<V> | null {
    const f = this.#fingerHolding(key);
    return f !== null && f.keys.length < MAX_KEYS ? f : null;
  }

  /** Inserts from the root (see #insert), growing a new root on a split. */
  #descend(key: StoredKey, val: V): void {
    this.#split = null;
    this.#insert(this.#root, key, val);
    const right = this.#split;
    if (right !== null) {
      const root = new Inner<V>();
      root.children.push(this.#root, right);
      root.keys.push(firstKey(this.#root), firstKey(right));
      this.#root = root;
    }
    this.#rightmost = this.#lastLeaf();
  }

  delete(key: Uint8Array): V | undefined {
    const path: Inner<V>[] = [];
    const idx: number[] = [];
    let n = this.#root;
    while (n instanceof Inner) {
      const ci = childIndex(n.keys, key, this.src);
      path.push(n);
      idx.push(ci);
      n = n.children[ci];
    }
    const i = lowerBound(n.keys, key, this.src);
    if (i >= n.keys.length || cmp(n.keys[i], key, this.src) !== 0) return undefined;
    const old = n.vals[i];
    removeAt(n.keys, i);
    removeAt(n.vals, i);
    this.#size--;
    this.#deleted = true;
    this.#finger = null;
    if (n.keys.length === 0 && path.length > 0) {
      if (n.prev) n.prev.next = n.next;
      if (n.next) n.next.prev = n.prev;
      // Remove the empty leaf and any ancestors that become empty.
      for (let d = path.length - 1; d >= 0; d--) {
        const p = path[d];
        removeAt(p.children, idx[d]);
        removeAt(p.keys, idx[d]);
        if (p.children.length > 0) break;
      }
      this.#collapseRoot();
    }
    return old;
  }

  /**
   * Visits keys in [start, end) in order; `end` undefined means no upper bound. Stops when `fn` returns false.
   */
  range(start: Uint8Array, end: Uint8Array | undefined, fn: (key: Uint8Array, val: V) => boolean | void): void {
    this.#range(start, end, fn as (key: StoredKey, val: V) => boolean | void, this.src !== null);
  }

  /** range() that passes keys as kept: no view made for a key kept as a number (for callers that need none). */
  rangeAsKept(start: Uint8Array, end: Uint8Array | undefined, fn: (key: unknown, val: V) => boolean | void): void {
    this.#range(start, end, fn, false);
  }

  #range(
    start: Uint8Array,
    end: Uint8Array | undefined,
    fn: (key: StoredKey, val: V) => boolean | void,
    resolve: boolean,
  ): void {
    let leaf: Leaf<V> | null = this.#leafFor(start);
    let i = lowerBound(leaf.keys, start, this.src);
    while (leaf !== null) {
      const keys = leaf.keys;
      const n = keys.length;
      // Compare with `end` per key only in the leaf where the range stops.
      if (end === undefined || (n > 0 && cmp(keys[n - 1], end, this.src) < 0)) {
        for (; i < n; i++) if (fn(resolve ? this.#bytes(keys[i]) : keys[i], leaf.vals[i]) === false) return;
      } else {
        for (; i < n; i++) {
          if (cmp(keys[i], end, this.src) >= 0) return;
          if (fn(resolve ? this.#bytes(keys[i]) : keys[i], leaf.vals[i]) === false) return;
        }
      }
      leaf = leaf.next;
      i = 0;
    }
  }

  /** Visits every entry in key order; stops when `fn` returns false. */
  forEach(fn: (key: Uint8Array, val: V) => boolean | void): void {
    this.#forEach(fn as (key: StoredKey, val: V) => boolean | void, this.src !== null);
  }

  /** forEach() that passes keys as kept (see rangeAsKept). */
  forEachAsKept(fn: (key: unknown, val: V) => boolean | void): void {
    this.#forEach(fn, false);
  }

  #forEach(fn: (key: StoredKey, val: V) => boolean | void, resolve: boolean): void {
    let leaf: Leaf<V> | null = this.#firstLeaf();
    while (leaf !== null) {
      for (let i = 0; i < leaf.keys.length; i++) {
        if (fn(resolve ? this.#bytes(leaf.keys[i]) : leaf.keys[i], leaf.vals[i]) === false) return;
      }
      leaf = leaf.next;
    }
  }

  /** The greatest entry, or undefined when empty. */
  last(): [Uint8Array, V] | undefined {
    const n = this.#lastLeaf();
    const k = n.keys.length;
    return k === 0 ? undefined : [this.#bytes(n.keys[k - 1]), n.vals[k - 1]];
  }

  clear(): void {
    this.#root = new Leaf<V>();
    this.#size = 0;
    this.#rightmost = null;
    this.#finger = null;
    this.#deleted = false;
  }

  #lastLeaf(): Leaf<V> {
    let n = this.#root;
    while (n instanceof Inner) n = n.children[n.children.length - 1];
    return n;
  }

  #firstLeaf(): Leaf<V> {
    let n = this.#root;
    while (n instanceof Inner) n = n.children[0];
    return n;
  }

  #leafFor(key: Uint8Array): Leaf<V> {
    let n = this.#root;
    while (n instanceof Inner) n = n.children[childIndex(n.keys, key, this.src)];
    return n;
  }

  #collapseRoot(): void {
    while (this.#root instanceof Inner && this.#root.children.length === 1) this.#root = this.#root.children[0];
    if (this.#root instanceof Inner && this.#root.children.length === 0) this.#root = new Leaf<V>();
  }

  #insert(n: Node<V>, key: StoredKey, val: V): void {
    if (n instanceof Leaf) {
      const i = lowerBound(n.keys, key, this.src);
      if (i < n.keys.length && cmp(n.keys[i], key, this.src) === 0) {
        this.#old = n.vals[i];
        if (this.#make === null) n.vals[i] = val;
        return;
      }
      if (this.#make !== null) val = this.#made = this.#make(key);
      this.#size++;
      this.#finger = n;
      if (n.keys.length < MAX_KEYS) {
        if (i === n.keys.length) {
          n.keys.push(key);
          n.vals.push(val);
        } else {
          insertAt(n.keys, i, key);
          insertAt(n.vals, i, val);
        }
        return;
      }
      const right = new Leaf<V>();
      if (i === n.keys.length && n.next === null) {
        // Appending past the rightmost key (revision keys, sequential loads): start a new leaf, keep this one full.
        right.keys.push(key);
        right.vals.push(val);
        this.#finger = right;
      } else {
        const mid = MAX_KEYS >>> 1;
        right.keys = n.keys.splice(mid);
        right.vals = n.vals.splice(mid);
        const target = i < mid ? n : right;
        const j = i < mid ? i : i - mid;
        insertAt(target.keys, j, key);
        insertAt(target.vals, j, val);
        this.#finger = target;
      }
      right.next = n.next;
      right.prev = n;
      if (n.next) n.next.prev = right;
      n.next = right;
      this.#split = right;
      return;
    }
    const ci = childIndex(n.keys, key, this.src);
    this.#insert(n.children[ci], key, val);
    const split = this.#split;
    if (split === null) return;
    this.#split = null;
    insertAt(n.children, ci + 1, split);
    insertAt(n.keys, ci + 1, firstKey(split));
    if (n.children.length <= MAX_KEYS) return;
    const right = new Inner<V>();
    const mid = n.children.length === ci + 2 && ci + 1 === MAX_KEYS ? MAX_KEYS : n.children.length >>> 1;
    right.children = n.children.splice(mid);
    right.keys = n.keys.splice(mid);
    this.#split = right;
  }
}

/**
 * a.splice(i, 0, v) without splice's result array: an allocation per call, two per key a restart's index inserts
 * (~150k keys: restore 336-493 -> 311-358 ms, page faults 16-18k -> 13-15k, measured).
 */
function insertAt<T>(a: T[], i: number, v: T): void {
  let k = a.length;
  a.push(v);
  for (; k > i; k--) a[k] = a[k - 1];
  a[i] = v;
}

/** a.splice(i, 1) without its result array. */
function removeAt<T>(a: T[], i: number): void {
  for (let k = i + 1; k < a.length; k++) a[k - 1] = a[k];
  a.length--;
}

function firstKey<V>(n: Node<V>): StoredKey {
  return n.keys[0];
}
