// A binary min-heap of (time, lease ID) items (etcd's lease/lease_queue.go): which lease is due first, for expiry and
// for checkpoints. Items are never updated in place: a lease that moves pushes a new item and the old one is dropped
// when it surfaces (the owner recognises it as stale), which keeps every operation O(log n).

export interface LeaseWithTime {
  /** Milliseconds on the lessor's clock. */
  time: number;
  id: bigint;
}

export class LeaseQueue {
  #items: LeaseWithTime[] = [];

  get length(): number {
    return this.#items.length;
  }

  push(item: LeaseWithTime): void {
    const a = this.#items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent].time <= item.time) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = item;
  }

  /** The earliest item, left in place. */
  peek(): LeaseWithTime | undefined {
    return this.#items[0];
  }

  pop(): LeaseWithTime | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let min = i, minTime = last.time;
      if (l < a.length && a[l].time < minTime) min = l, minTime = a[l].time;
      if (r < a.length && a[r].time < minTime) min = r;
      if (min === i) break;
      a[i] = a[min];
      i = min;
    }
    a[i] = last;
    return top;
  }

  clear(): void {
    this.#items = [];
  }
}
