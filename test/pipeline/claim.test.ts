import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ClaimAtRiskAbort, SupersededAbort } from '../../src/pipeline/aborts.js';
import { holdClaim } from '../../src/pipeline/claim.js';
import { StoreUnavailableError } from '../../src/store/failures.js';
import { LEASE_MS } from '../../src/store/store.js';

const unavailable = () => new StoreUnavailableError('PG_UNAVAILABLE', 'cannot use the PostgreSQL state database at 127.0.0.1:5432/cryomix: ECONNREFUSED');

/** Renewals answered one after another from `answers` (the last one repeats); `never` hangs, as a server cut off would. */
function renewals(...answers: (boolean | Error | 'never')[]) {
  const asked: number[] = [];
  const renew = () => {
    asked.push(Date.now());
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (answer === 'never') return new Promise<boolean>(() => {});
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  };
  return { renew, asked };
}

describe('a held claim', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is kept while renewals succeed', async () => {
    const { renew, asked } = renewals(true);
    const claim = holdClaim(renew, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(5 * LEASE_MS);
    expect(claim.signal.aborted).toBe(false);
    expect(asked.length).toBeGreaterThanOrEqual(10);
    claim.release();
  });

  it('outlives a database that does not answer for a while, asking again at each renewal', async () => {
    const { renew } = renewals(unavailable(), unavailable(), true);
    const claim = holdClaim(renew, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(2 * LEASE_MS);
    expect(claim.signal.aborted).toBe(false);
    expect(claim.storeFailure).toBeUndefined();
    claim.release();
  });

  it.each([
    ['refuses every renewal as unavailable', unavailable()],
    ['hangs on a renewal', 'never' as const],
  ])('is given up before its lease lapses when the database %s', async (_how, answer) => {
    const { renew, asked } = renewals(answer);
    const claim = holdClaim(renew, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(LEASE_MS * 0.6);
    expect(claim.signal.aborted).toBe(false);
    // Stopped with time to spare: another daemon may take the job over only once the lease has lapsed.
    await vi.advanceTimersByTimeAsync(LEASE_MS * 0.25);
    expect(claim.signal.reason).toBeInstanceOf(ClaimAtRiskAbort);
    expect(claim.storeFailure).toBeUndefined();
    // A hung renewal is not asked again on top of itself.
    if (answer === 'never') expect(asked).toHaveLength(1);
    claim.release();
  });

  it('is given up after the machine was suspended past its lease, though the monotonic clock stood still', async () => {
    const claim = holdClaim(renewals(true).renew, new AbortController().signal);
    // Suspended: the wall clock (and the database's) moves on, the monotonic clock does not.
    vi.setSystemTime(Date.now() + 2 * LEASE_MS);
    await vi.advanceTimersByTimeAsync(LEASE_MS / 6);
    expect(claim.signal.reason).toBeInstanceOf(ClaimAtRiskAbort);
    claim.release();
  });

  it('ends the work at once when another holder took the job over, and keeps a database failure for the caller', async () => {
    const takenOver = holdClaim(renewals(false).renew, new AbortController().signal);
    const broken = holdClaim(renewals(new Error('SQLITE_CORRUPT')).renew, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(LEASE_MS / 6);
    expect(takenOver.signal.reason).toBeInstanceOf(SupersededAbort);
    expect(broken.signal.aborted).toBe(true);
    expect(broken.storeFailure).toEqual(new Error('SQLITE_CORRUPT'));
    takenOver.release();
    broken.release();
  });
});
