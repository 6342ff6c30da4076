/**
 * An intrusive doubly linked list: the links live in the members, each in at most one list at a time. Watchers move
 * between places (synced, unsynced, parked) thousands of times a second when a client falls behind a wide fan-out;
 * hash sets of thousands of members reallocated their tables on those moves (tens of MiB of old-space garbage per
 * second), a move between lists allocates nothing.
 */
export interface Linked {
  prev: Linked | undefined;
  next: Linked | undefined;
  /** The list the member is on. */
  list: LinkedList<Linked> | undefined;
}

export class LinkedList<T extends Linked> {
  #head: T | undefined = undefined;
  #tail: T | undefined = undefined;
  #size = 0;

  /** owner: whose list it is, for members' owners to recognise their own (see WatcherGroup.delete). */
  constructor(readonly owner?: unknown) {}

  get size(): number {
    return this.#size;
  }

  /** The first member, if any. */
  get head(): T | undefined {
    return this.#head;
  }

  /** Appends x, which must be on no list. */
  push(x: T): void {
    if (x.list !== undefined) throw new Error("linked list: member already on a list");
    x.list = this as LinkedList<Linked>;
    x.prev = this.#tail;
    x.next = undefined;
    if (this.#tail === undefined) this.#head = x;
    else this.#tail.next = x;
    this.#tail = x;
    this.#size++;
  }

  /** Removes x; false when it is not on this list. */
  delete(x: T): boolean {
    if (x.list !== this) return false;
    const { prev, next } = x;
    if (prev === undefined) this.#head = next as T | undefined;
    else prev.next = next;
    if (next === undefined) this.#tail = prev as T | undefined;
    else next.prev = prev;
    x.list = x.prev = x.next = undefined;
    this.#size--;
    return true;
  }

  /** Calls fn with each member in order; fn may remove the member it is given (no other). */
  forEach(fn: (x: T) => void): void {
    for (let x = this.#head; x !== undefined;) {
      const next = x.next as T | undefined;
      fn(x);
      x = next;
    }
  }
}
