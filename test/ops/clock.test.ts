import { describe, expect, it } from 'vitest';
import { clockLine, clockSkew } from '../../src/ops/clock.js';

const apiDate = new Date('2025-03-01T12:00:00Z');
const at = (iso: string, roundTripMs = 0) => ({ sentAt: Date.parse(iso), receivedAt: Date.parse(iso) + roundTripMs });

describe('clockSkew', () => {
  it('compares the middle of the round trip with the middle of the Date header\'s second', () => {
    expect(clockSkew(at('2025-03-01T12:00:00.300Z', 400), apiDate)).toEqual({ skewMs: 0, uncertaintyMs: 700 });
    expect(clockSkew(at('2025-03-01T13:00:00.500Z'), apiDate)).toEqual({ skewMs: 3_600_000, uncertaintyMs: 500 });
    expect(clockSkew(at('2025-03-01T11:57:00.500Z'), apiDate).skewMs).toBe(-180_000);
  });
});

describe('clockLine', () => {
  it('passes within a minute; warns past it, saying uploads are not affected; fails past a day, naming HTTPS; each with the NTP fix', () => {
    expect(clockLine(clockSkew(at('2025-03-01T12:00:00.700Z'), apiDate), "the API's clock").detail).toBe("in step with the API's clock (± 1 s, from its Date header)");
    expect(clockLine(clockSkew(at('2025-03-01T12:00:02.500Z'), apiDate), "the API's clock")).toEqual({
      verdict: 'PASS',
      check: 'clock',
      detail: "2 s ahead of the API's clock (± 1 s, from its Date header)",
    });
    expect(clockLine(clockSkew(at('2025-03-01T11:40:00.500Z'), apiDate), "the API's clock")).toMatchObject({
      verdict: 'WARN',
      detail: expect.stringMatching(/^20 min behind the API's clock .*uploads are not affected, .*turn on time synchronisation: sudo timedatectl set-ntp true/),
    });
    expect(clockLine(clockSkew(at('2025-03-01T13:02:00.500Z'), apiDate), "the API's clock").verdict).toBe('WARN');
    expect(clockLine(clockSkew(at('2025-03-03T12:00:00.500Z'), apiDate), "the API's clock")).toMatchObject({
      verdict: 'FAIL',
      detail: expect.stringMatching(/^48\.0 h ahead of the API's clock .*HTTPS certificates may be refused .*sudo timedatectl set-ntp true/),
    });
  });

  it('does not fail a skew that a slow round trip could explain', () => {
    // A day and 20 s apart, but the answer took a minute: the API's clock may be a little under a day off.
    const slow = { sentAt: Date.parse('2025-03-02T12:00:00.500Z'), receivedAt: Date.parse('2025-03-02T12:01:00.500Z') };
    expect(clockLine(clockSkew(slow, apiDate), "the API's clock").verdict).toBe('WARN');
  });
});
