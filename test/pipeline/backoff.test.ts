import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../src/pipeline/backoff.js';

const policy = { initialDelayMs: 2_000, maxDelayMs: 300_000 };

describe('retryDelayMs', () => {
  it('doubles from the initial delay, with at most half of it random', () => {
    expect(retryDelayMs(policy, 1, undefined, () => 0)).toBe(1_000);
    expect(retryDelayMs(policy, 1, undefined, () => 1)).toBe(2_000);
    expect(retryDelayMs(policy, 3, undefined, () => 1)).toBe(8_000);
  });

  it('is capped at the maximum delay', () => {
    for (let attempt = 1; attempt < 60; attempt++) expect(retryDelayMs(policy, attempt)).toBeLessThanOrEqual(300_000);
    expect(retryDelayMs(policy, 40, undefined, () => 0)).toBe(150_000);
  });

  it('spreads retries of one attempt over a range (jitter)', () => {
    const delays = new Set(Array.from({ length: 20 }, () => retryDelayMs(policy, 4)));
    expect(delays.size).toBeGreaterThan(1);
  });

  it('honours Retry-After, but not beyond an hour', () => {
    expect(retryDelayMs(policy, 1, 42_000)).toBe(42_000);
    expect(retryDelayMs(policy, 1, 0)).toBe(0);
    expect(retryDelayMs(policy, 1, 10 * 24 * 3600_000)).toBe(3600_000);
  });
});
