import { describe, expect, it } from 'vitest';
import { lifetimeSuffices, requestedExpirySeconds } from '../../src/pipeline/urlLifetime.js';

describe('URL lifetimes', () => {
  it('asks for twice the expected transfer plus a margin, within the configured floor and the API\'s 7-day ceiling', () => {
    expect(requestedExpirySeconds(600, 1_000)).toBe(600);
    expect(requestedExpirySeconds(600, 3_600_000)).toBe(7_230);
    expect(requestedExpirySeconds(600, 30 * 86_400_000)).toBe(604_800);
  });

  it('counts the lifetime from when the URL was asked for, on the clock it is given, not the wall clock', () => {
    const askedAt = 1_000_000;
    // 600 s lifetime, a 60 s transfer, 30 s margin.
    expect(lifetimeSuffices(600, askedAt, 60_000, askedAt + 1_000)).toBe(true);
    expect(lifetimeSuffices(600, askedAt, 60_000, askedAt + 509_000)).toBe(true);
    expect(lifetimeSuffices(600, askedAt, 60_000, askedAt + 511_000)).toBe(false);
    expect(lifetimeSuffices(60, askedAt, 60_000, askedAt)).toBe(false);
  });
});
