import { isStoreUnavailable } from '../store/failures.js';
import { LEASE_MS } from '../store/store.js';
import { ClaimAtRiskAbort, SupersededAbort } from './aborts.js';

/** Renewed this often: a claim outlives a few renewals in a row that fail. */
const RENEW_EVERY_MS = LEASE_MS / 6;

/**
 * A claim not renewed for this long is given up: the work stops with two
 * renewals' worth of the lease left, so that it has stopped before the
 * lease lapses and another process may take the job over.
 */
const GIVE_UP_AFTER_MS = LEASE_MS - 2 * RENEW_EVERY_MS;

export interface HeldClaim {
  /** Aborts when the claim is lost (another process took the row over), is at risk (renewals failing), or the DB fails, or when `signal` does. */
  signal: AbortSignal;
  /** A DB failure met while renewing: the caller must rethrow it once the work has stopped. */
  storeFailure: unknown;
  release(): void;
}

/**
 * Keeps renewing this process's claim on a job while work on it runs, so
 * that another process (another daemon, `upload FILE`) leaves it alone, and
 * ends the work at once if the claim is lost. A database that does not
 * answer (a shared PostgreSQL down or cut off) is asked again at the next
 * renewal; if it still has not answered when the lease is close to lapsing,
 * the work ends with ClaimAtRiskAbort.
 */
export function holdClaim(renew: () => Promise<boolean>, signal: AbortSignal): HeldClaim {
  const lost = new AbortController();
  const held: HeldClaim = {
    signal: AbortSignal.any([signal, lost.signal]),
    storeFailure: undefined,
    release: () => clearInterval(timer),
  };
  // When the last renewal that succeeded was asked for: the lease it set runs from no earlier than that. Both clocks:
  // the monotonic one stands still while the machine is suspended, and the database's clock does not.
  let renewedAt = { monotonic: performance.now(), wall: Date.now() };
  const sinceRenewed = () => Math.max(performance.now() - renewedAt.monotonic, Date.now() - renewedAt.wall);
  // One renewal at a time: those of a database that hangs must not pile up.
  let renewing = false;
  const timer = setInterval(() => {
    if (sinceRenewed() > GIVE_UP_AFTER_MS) {
      clearInterval(timer);
      lost.abort(new ClaimAtRiskAbort());
      return;
    }
    if (renewing) return;
    renewing = true;
    const askedAt = { monotonic: performance.now(), wall: Date.now() };
    renew()
      .then(
        (kept) => {
          if (kept) renewedAt = askedAt;
          else lost.abort(new SupersededAbort());
        },
        (error: unknown) => {
          if (isStoreUnavailable(error)) return;
          held.storeFailure ??= error;
          lost.abort(error);
        },
      )
      .finally(() => {
        renewing = false;
      });
  }, RENEW_EVERY_MS).unref();
  return held;
}
