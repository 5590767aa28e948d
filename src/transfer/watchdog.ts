/**
 * Aborts a transfer when nothing has moved for a while. `poke()` says
 * something moved; `restart(ms)` changes the window's length and starts it
 * again. The timer checks a deadline when it fires instead of being reset at
 * every poke, so the window is always the whole `windowMs` after the last
 * movement, whatever came between.
 */
export class StallWatchdog {
  readonly #controller = new AbortController();
  readonly #reason: (windowMs: number) => Error;
  #timer: NodeJS.Timeout | undefined;
  #windowMs: number;
  /** When something last moved (performance.now()), moved on by the time excused since. */
  #movedAt = performance.now();
  /** While we hold the transfer back ourselves (excuse), the clock does not run. One wait at a time: a transfer waits for its cap piece by piece. */
  #excused = false;
  #stopped = false;

  constructor(windowMs: number, reason: (windowMs: number) => Error) {
    this.#reason = reason;
    this.#windowMs = windowMs;
    this.#arm(windowMs);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  poke(): void {
    this.#movedAt = performance.now();
  }

  /** Ignored once stopped: stream events can still arrive after the transfer settled. */
  restart(windowMs: number): void {
    if (this.#stopped) return;
    this.#windowMs = windowMs;
    this.#movedAt = performance.now();
    this.#arm(windowMs);
  }

  /**
   * Time spent waiting for `held` (our own bandwidth cap) does not count
   * towards a stall, however long; what was left of the window before it
   * still does, so a transfer stuck on the network is noticed in time.
   */
  async excuse<T>(held: Promise<T>): Promise<T> {
    this.#excused = true;
    const from = performance.now();
    try {
      return await held;
    } finally {
      this.#excused = false;
      // Excused from when the wait began, or from a movement during it (a write of an earlier piece called back).
      this.#movedAt += performance.now() - Math.max(from, this.#movedAt);
      if (!this.#stopped) this.#check();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #arm(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), delayMs);
  }

  /** Aborts if the window has passed since the last movement; otherwise looks again when it would. During an excuse, the excuse's end looks. */
  #check(): void {
    if (this.#stopped || this.#excused) return;
    const idleMs = performance.now() - this.#movedAt;
    if (idleMs >= this.#windowMs) this.#controller.abort(this.#reason(this.#windowMs));
    else this.#arm(this.#windowMs - idleMs);
  }
}

/**
 * Bytes the operating system may still hold after the last one was handed
 * to the socket (Linux caps the TCP send buffer at 4 MiB by default), and
 * the slowest uplink we wait for while they drain (256 kbit/s). Nothing we
 * can observe moves during that drain, so without this allowance every
 * upload over a slow line would "stall" at its very end and restart from
 * the first byte, forever.
 */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const SLOWEST_UPLINK_BYTES_PER_SECOND = 32 * 1024;

export function drainAllowanceMs(size: number): number {
  return Math.ceil((Math.min(size, MAX_QUEUED_BYTES) / SLOWEST_UPLINK_BYTES_PER_SECOND) * 1000);
}
