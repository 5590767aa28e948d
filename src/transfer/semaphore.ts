/**
 * At most `permits` holders at once: `acquire()` waits for a `release()`, in
 * the order the callers came, and yields false once closed.
 */
export class Semaphore {
  #available: number;
  readonly #waiting: ((acquired: boolean) => void)[] = [];
  #closed = false;

  constructor(permits: number) {
    this.#available = permits;
  }

  /** Takes a permit if one is free now, without waiting (nor allocating). */
  tryAcquire(): boolean {
    if (this.#closed || this.#available === 0) return false;
    this.#available--;
    return true;
  }

  acquire(): Promise<boolean> {
    if (this.tryAcquire()) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const waiting = this.#waiting.shift();
    if (waiting === undefined) this.#available++;
    else waiting(true);
  }

  close(): void {
    this.#closed = true;
    for (const waiting of this.#waiting.splice(0)) waiting(false);
  }
}
