/**
 * Aborts a transfer when nothing has moved for a while. Each `poke()` starts
 * the current window again; `restart(ms)` changes its length.
 */
export class StallWatchdog {
  readonly #controller = new AbortController();
  readonly #reason: (windowMs: number) => Error;
  #timer: NodeJS.Timeout;
  #windowMs: number;
  /** When something last moved (performance.now()), with excused time added back. */
  #movedAt = performance.now();
  #stopped = false;
  /** While we hold the transfer back ourselves (excuse), the clock does not run. */
  #excused = false;

  constructor(windowMs: number, reason: (windowMs: number) => Error) {
    this.#reason = reason;
    this.#windowMs = windowMs;
    this.#timer = this.#arm(windowMs);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  poke(): void {
    this.#movedAt = performance.now();
    if (!this.#excused) this.#timer.refresh();
  }

  /** Ignored once stopped: stream events can still arrive after the transfer settled. */
  restart(windowMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#windowMs = windowMs;
    this.#movedAt = performance.now();
    if (!this.#excused) this.#timer = this.#arm(windowMs);
  }

  /**
   * Time spent waiting for `held` (our own bandwidth cap) does not count
   * towards a stall, however long; what was left of the window before it
   * still does, so a transfer stuck on the network is noticed in time.
   */
  async excuse<T>(held: Promise<T>): Promise<T> {
    clearTimeout(this.#timer);
    this.#excused = true;
    const from = performance.now();
    try {
      return await held;
    } finally {
      this.#excused = false;
      this.#movedAt += performance.now() - from;
      if (!this.#stopped) this.#timer = this.#arm(this.#windowMs, Math.max(0, this.#windowMs - (performance.now() - this.#movedAt)));
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #arm(windowMs: number, delayMs = windowMs): NodeJS.Timeout {
    return setTimeout(() => this.#controller.abort(this.#reason(windowMs)), delayMs);
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
