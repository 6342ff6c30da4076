/**
 * An interval tree over byte-string keys (etcd's pkg/adt IntervalTree, as the watcher groups use it): half-open
 * intervals [begin, end) of latin1-encoded keys, where an empty end means "to the last key". Finding every interval
 * that holds a point costs O(log n + matches), never a scan of all intervals.
 *
 * A treap ordered by (begin, end) and augmented with each subtree's largest end. Priorities come from a fixed-seed
 * generator, so the shape (and any bug) is the same on every run.
 */

interface Node<V> {
  begin: string;
  end: string;
  value: V;
  priority: number;
  /** The largest end in this subtree ("" is the largest of all). */
  maxEnd: string;
  left: Node<V> | null;
  right: Node<V> | null;
}

/** a > b for interval ends, where "" is unbounded. */
function endAfter(a: string, b: string): boolean {
  if (a === "") return b !== "";
  return b !== "" && a > b;
}

function compare(aBegin: string, aEnd: string, bBegin: string, bEnd: string): number {
  if (aBegin !== bBegin) return aBegin < bBegin ? -1 : 1;
  if (aEnd === bEnd) return 0;
  return endAfter(aEnd, bEnd) ? 1 : -1;
}

function update<V>(n: Node<V>): void {
  let m = n.end;
  if (n.left !== null && endAfter(n.left.maxEnd, m)) m = n.left.maxEnd;
  if (n.right !== null && endAfter(n.right.maxEnd, m)) m = n.right.maxEnd;
  n.maxEnd = m;
}

function rotateRight<V>(n: Node<V>): Node<V> {
  const l = n.left!;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft<V>(n: Node<V>): Node<V> {
  const r = n.right!;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

export class IntervalTree<V> {
  #root: Node<V> | null = null;
  #size = 0;
  #seed = 0x9e3779b9;

  get size(): number {
    return this.#size;
  }

  /** The value stored for exactly [begin, end), if any. */
  find(begin: string, end: string): V | undefined {
    let n = this.#root;
    while (n !== null) {
      const c = compare(begin, end, n.begin, n.end);
      if (c === 0) return n.value;
      n = c < 0 ? n.left : n.right;
    }
    return undefined;
  }

  /** Stores value for [begin, end); the interval must not be present yet. */
  insert(begin: string, end: string, value: V): void {
    if (end !== "" && begin >= end) throw new Error(`interval tree: empty interval [${begin}, ${end})`);
    this.#root = this.#insert(this.#root, {
      begin,
      end,
      value,
      priority: this.#nextPriority(),
      maxEnd: end,
      left: null,
      right: null,
    });
    this.#size++;
  }

  /** Removes [begin, end); returns whether it was present. */
  delete(begin: string, end: string): boolean {
    const before = this.#size;
    this.#root = this.#delete(this.#root, begin, end);
    return this.#size < before;
  }

  /** Calls fn with the value of every interval holding point. */
  stab(point: string, fn: (value: V) => void): void {
    this.#stab(this.#root, point, fn);
  }

  /** Calls fn with every value, in interval order. */
  forEach(fn: (value: V) => void): void {
    const walk = (n: Node<V> | null): void => {
      if (n === null) return;
      walk(n.left);
      fn(n.value);
      walk(n.right);
    };
    walk(this.#root);
  }

  /** Whether any interval holds point. */
  intersects(point: string): boolean {
    let found = false;
    this.#stab(this.#root, point, () => found = true);
    return found;
  }

  #nextPriority(): number {
    // xorshift32: deterministic priorities
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed;
  }

  #insert(n: Node<V> | null, x: Node<V>): Node<V> {
    if (n === null) return x;
    const c = compare(x.begin, x.end, n.begin, n.end);
    if (c === 0) throw new Error(`interval tree: [${x.begin}, ${x.end}) inserted twice`);
    if (c < 0) {
      n.left = this.#insert(n.left, x);
      if (n.left.priority > n.priority) return rotateRight(n);
    } else {
      n.right = this.#insert(n.right, x);
      if (n.right.priority > n.priority) return rotateLeft(n);
    }
    update(n);
    return n;
  }

  #delete(n: Node<V> | null, begin: string, end: string): Node<V> | null {
    if (n === null) return null;
    const c = compare(begin, end, n.begin, n.end);
    if (c < 0) n.left = this.#delete(n.left, begin, end);
    else if (c > 0) n.right = this.#delete(n.right, begin, end);
    else {
      if (n.left === null || n.right === null) {
        this.#size--;
        return n.left ?? n.right;
      }
      // rotate the node down towards a leaf, keeping the heap order
      if (n.left.priority > n.right.priority) {
        const top = rotateRight(n);
        top.right = this.#delete(top.right, begin, end);
        update(top);
        return top;
      }
      const top = rotateLeft(n);
      top.left = this.#delete(top.left, begin, end);
      update(top);
      return top;
    }
    update(n);
    return n;
  }

  #stab(n: Node<V> | null, p: string, fn: (value: V) => void): void {
    while (n !== null) {
      // nothing in this subtree reaches past p
      if (n.maxEnd !== "" && n.maxEnd <= p) return;
      this.#stab(n.left, p, fn);
      // every interval to the right begins at or after n.begin: none holds p when n.begin > p
      if (n.begin > p) return;
      if (n.end === "" || p < n.end) fn(n.value);
      n = n.right;
    }
  }
}
