// The request side of a client- or bidi-streaming call as an AsyncIterable. Bounded: push() reports when the
// queue is full so the caller can pause the socket (HTTP/2 flow control then stops the peer), and the consumer's
// progress calls onDrain to resume it.

export class MessageQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #ended = false;
  #error: unknown = undefined;
  #waiter: ((r: IteratorResult<T>) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;

  constructor(readonly highWaterMark: number, readonly onDrain: () => void) {}

  // Returns false once highWaterMark messages are waiting.
  push(item: T): boolean {
    if (this.#ended) return true;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#clearWaiter();
      w({ value: item, done: false });
      return true;
    }
    this.#items.push(item);
    return this.#items.length < this.highWaterMark;
  }

  // Ends the iteration after queued items (client half-close), or at once with an error.
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (error !== undefined) this.#items.length = 0;
    if (this.#waiter && this.#items.length === 0) {
      const [w, r] = [this.#waiter, this.#reject!];
      this.#clearWaiter();
      if (error === undefined) w({ value: undefined, done: true });
      else r(error);
    }
  }

  #clearWaiter() {
    this.#waiter = undefined;
    this.#reject = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) {
          const value = this.#items.shift()!;
          if (this.#items.length === this.highWaterMark - 1) this.onDrain();
          return Promise.resolve({ value, done: false });
        }
        if (this.#ended) {
          return this.#error === undefined
            ? Promise.resolve({ value: undefined, done: true })
            : Promise.reject(this.#error);
        }
        return new Promise((resolve, reject) => {
          this.#waiter = resolve;
          this.#reject = reject;
        });
      },
      return: () => {
        this.end();
        this.#items.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
