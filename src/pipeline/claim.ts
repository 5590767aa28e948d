import { LEASE_MS } from '../store/store.js';
import { SupersededAbort } from './aborts.js';

export interface HeldClaim {
  /** Aborts when the claim is lost (another process took the row over) or the DB fails, or when `signal` does. */
  signal: AbortSignal;
  /** A DB failure met while renewing: the caller must rethrow it once the work has stopped. */
  storeFailure: unknown;
  release(): void;
}

/**
 * Keeps renewing this process's claim on a job while work on it runs, so
 * that another process (the daemon and `upload FILE` share the DB) leaves it
 * alone, and ends the work at once if the claim is lost.
 */
export function holdClaim(renew: () => Promise<boolean>, signal: AbortSignal): HeldClaim {
  const lost = new AbortController();
  const held: HeldClaim = {
    signal: AbortSignal.any([signal, lost.signal]),
    storeFailure: undefined,
    release: () => clearInterval(timer),
  };
  const timer = setInterval(() => {
    renew().then(
      (kept) => {
        if (!kept) lost.abort(new SupersededAbort());
      },
      (error: unknown) => {
        held.storeFailure ??= error;
        lost.abort(error);
      },
    );
  }, LEASE_MS / 3).unref();
  return held;
}
