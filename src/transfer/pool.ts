/**
 * Items lent to one borrower at a time: `take()` waits for one to come back,
 * in the order the takers came, and yields undefined once closed.
 */
export class Pool<T> {
  readonly #free: T[];
  readonly #waiting: ((item: T | undefined) => void)[] = [];
  #closed = false;

  constructor(items: T[]) {
    this.#free = items;
  }

  take(): Promise<T | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const free = this.#free.pop();
    if (free !== undefined) return Promise.resolve(free);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  give(item: T): void {
    const waiting = this.#waiting.shift();
    if (waiting === undefined) this.#free.push(item);
    else waiting(item);
  }

  close(): void {
    this.#closed = true;
    for (const waiting of this.#waiting.splice(0)) waiting(undefined);
  }
}
