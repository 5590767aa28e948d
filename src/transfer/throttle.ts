/** A cap in bytes per second; null: none. */
export type ByteRate = number | null;

/** Credit a throttle may bank while idle: a tenth of a second at its rate, so a pause is not followed by a burst. */
const BURST_SECONDS = 0.1;

interface Waiter {
  bytes: number;
  grant(): void;
}

/**
 * One byte rate shared by every transfer that draws on it: two uploads
 * under a 4 MB/s cap get about 2 MB/s each, since they take turns, first
 * come first served. A token bucket whose balance may go below zero: a
 * chunk is let through once the balance is not negative, and the next one
 * waits until the chunk is paid for, so the average is the rate whatever
 * the chunk size. A new rate applies to the transfers already waiting at
 * once. It holds no data: callers pass a size and wait, with the buffers
 * they already have.
 */
export class Throttle {
  #rate: ByteRate;
  #balance = 0;
  #balancedAt: number;
  readonly #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(rate: ByteRate = null, now: () => number = () => performance.now()) {
    this.#rate = rate;
    this.#now = now;
    this.#balancedAt = now();
  }

  get rate(): ByteRate {
    return this.#rate;
  }

  setRate(rate: ByteRate): void {
    this.#settle();
    // Debt run up under one cap is not owed under another after a time without any.
    this.#balance = rate === null || this.#rate === null ? 0 : Math.min(this.#balance, rate * BURST_SECONDS);
    this.#rate = rate;
    this.#serve();
  }

  /**
   * Lets `bytes` through now if it can (no cap, or credit and nobody
   * waiting), charging them: the common case, with nothing allocated.
   * False means: wait with `take`.
   */
  tryTake(bytes: number): boolean {
    if (this.#waiters.length > 0) return false;
    if (this.#rate === null) return true;
    this.#settle();
    if (this.#balance < 0) return false;
    this.#balance -= bytes;
    return true;
  }

  /**
   * Resolves once `bytes` may be sent, in turn. Aborting `signal` rejects
   * with its reason and gives the turn to the next transfer.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(signal?.reason);
        this.#serve();
      };
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#serve();
    });
  }

  /** Credits the time since the last settlement at the rate then in force. */
  #settle(): void {
    const now = this.#now();
    if (this.#rate !== null) this.#balance = Math.min(this.#rate * BURST_SECONDS, this.#balance + (this.#rate * (now - this.#balancedAt)) / 1000);
    this.#balancedAt = now;
  }

  #serve(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#settle();
    for (let waiter = this.#waiters[0]; waiter !== undefined; waiter = this.#waiters[0]) {
      const rate = this.#rate;
      if (rate !== null && this.#balance < 0) {
        this.#timer = setTimeout(() => this.#serve(), Math.ceil((-this.#balance * 1000) / rate));
        return;
      }
      this.#waiters.shift();
      if (rate !== null) this.#balance -= waiter.bytes;
      waiter.grant();
    }
  }
}
