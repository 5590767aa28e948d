import { describe, expect, it } from 'vitest';
import { type Schedule, schedule } from '../../src/config/schedule.js';
import { limitAt } from '../../src/transfer/timetable.js';

const BASE = 8_000_000;

function scheduleIn(timezone: string, ...windows: [days: string, hours: string, limit: string][]): Schedule {
  return schedule.parse({ timezone, windows: windows.map(([days, hours, limit]) => ({ days, hours, limit })) });
}

/** Instants written with their offset, so each test shows the local time it means. */
const at = (iso: string) => Date.parse(iso);

function inForce(timetable: Schedule | undefined, iso: string, base: number | null = BASE) {
  const { limit, reason, nextChangeAt } = limitAt(base, timetable, at(iso));
  return { limit, reason, nextChangeAt: nextChangeAt === null ? null : new Date(nextChangeAt).toISOString() };
}

const utc = (iso: string) => new Date(at(iso)).toISOString();

describe('limitAt without a schedule', () => {
  it('is the base limit for good', () => {
    expect(limitAt(BASE, undefined, at('2026-06-08T12:00:00Z'))).toEqual({ limit: BASE, reason: 'base', nextChangeAt: null });
    expect(limitAt(null, undefined, at('2026-06-08T12:00:00Z'))).toEqual({ limit: null, reason: 'base', nextChangeAt: null });
  });
});

describe('limitAt in Europe/Berlin', () => {
  const office = scheduleIn('Europe/Berlin', ['Mon-Fri', '09:00-19:00', '2 MB/s']);

  it('applies the base limit outside every window, and says when the next one opens', () => {
    expect(inForce(office, '2026-06-08T08:59:59.999+02:00')).toEqual({
      limit: BASE,
      reason: 'base',
      nextChangeAt: utc('2026-06-08T09:00:00+02:00'),
    });
    expect(inForce(office, '2026-06-08T08:00:00+02:00', null)).toMatchObject({ limit: null, reason: 'base' });
  });

  it("applies a window's limit from its start, up to but not at its end", () => {
    expect(inForce(office, '2026-06-08T09:00:00+02:00')).toEqual({
      limit: 2_000_000,
      reason: 'schedule: Mon-Fri 09:00-19:00',
      nextChangeAt: utc('2026-06-08T19:00:00+02:00'),
    });
    expect(inForce(office, '2026-06-08T19:00:00+02:00')).toMatchObject({ limit: BASE, reason: 'base' });
  });

  it('looks across the weekend and the change to summer time for the next window', () => {
    expect(inForce(office, '2026-03-27T19:00:00+01:00').nextChangeAt).toBe(utc('2026-03-30T09:00:00+02:00'));
  });

  describe('spring forward, 2026-03-29 02:00 → 03:00', () => {
    it('starts a window whose start does not exist at the end of the gap', () => {
      const night = scheduleIn('Europe/Berlin', ['Sun', '02:30-05:00', '1 MB/s']);
      expect(inForce(night, '2026-03-29T01:59:59+01:00')).toEqual({
        limit: BASE,
        reason: 'base',
        nextChangeAt: utc('2026-03-29T03:00:00+02:00'),
      });
      expect(inForce(night, '2026-03-29T03:00:00+02:00')).toEqual({
        limit: 1_000_000,
        reason: 'schedule: Sun 02:30-05:00',
        nextChangeAt: utc('2026-03-29T05:00:00+02:00'),
      });
    });

    it('ends a window whose end does not exist at the end of the gap', () => {
      const night = scheduleIn('Europe/Berlin', ['Sun', '01:00-02:30', '1 MB/s']);
      expect(inForce(night, '2026-03-29T01:59:59+01:00')).toEqual({
        limit: 1_000_000,
        reason: 'schedule: Sun 01:00-02:30',
        nextChangeAt: utc('2026-03-29T03:00:00+02:00'),
      });
      expect(inForce(night, '2026-03-29T03:00:00+02:00')).toMatchObject({ limit: BASE, reason: 'base' });
    });

    it('skips a window that lies wholly in the gap, until next week', () => {
      const lost = scheduleIn('Europe/Berlin', ['Sun', '02:10-02:50', 'pause']);
      expect(inForce(lost, '2026-03-29T01:00:00+01:00')).toEqual({
        limit: BASE,
        reason: 'base',
        nextChangeAt: utc('2026-04-05T02:10:00+02:00'),
      });
    });
  });

  describe('fall back, 2026-10-25 03:00 → 02:00', () => {
    const late = scheduleIn('Europe/Berlin', ['Sun', '02:30-04:00', 'pause']);
    const early = scheduleIn('Europe/Berlin', ['Sun', '00:00-02:30', '1 MB/s']);

    it('starts a window at the first 02:30, and keeps it open through the repeated hour', () => {
      expect(inForce(late, '2026-10-25T02:29:59+02:00')).toEqual({
        limit: BASE,
        reason: 'base',
        nextChangeAt: utc('2026-10-25T02:30:00+02:00'),
      });
      expect(inForce(late, '2026-10-25T02:30:00+02:00')).toEqual({
        limit: 'pause',
        reason: 'schedule: Sun 02:30-04:00',
        nextChangeAt: utc('2026-10-25T04:00:00+01:00'),
      });
      // 02:15 for the second time: the local clock is before 02:30 again, the window stays open.
      expect(inForce(late, '2026-10-25T02:15:00+01:00')).toMatchObject({ limit: 'pause' });
    });

    it('ends a window at the first 02:30, and does not reopen it in the repeated hour', () => {
      expect(inForce(early, '2026-10-25T02:29:59+02:00')).toEqual({
        limit: 1_000_000,
        reason: 'schedule: Sun 00:00-02:30',
        nextChangeAt: utc('2026-10-25T02:30:00+02:00'),
      });
      expect(inForce(early, '2026-10-25T02:10:00+01:00')).toEqual({
        limit: BASE,
        reason: 'base',
        nextChangeAt: utc('2026-11-01T00:00:00+01:00'),
      });
    });
  });

  describe('a window past midnight, Fri 22:00-06:00', () => {
    const weekend = scheduleIn('Europe/Berlin', ['Fri', '22:00-06:00', 'pause']);

    it('pauses from Friday 22:00 to Saturday 06:00', () => {
      expect(inForce(weekend, '2026-06-05T21:59:59+02:00')).toMatchObject({ limit: BASE, nextChangeAt: utc('2026-06-05T22:00:00+02:00') });
      expect(inForce(weekend, '2026-06-05T22:00:00+02:00')).toEqual({
        limit: 'pause',
        reason: 'schedule: Fri 22:00-06:00',
        nextChangeAt: utc('2026-06-06T06:00:00+02:00'),
      });
      expect(inForce(weekend, '2026-06-06T05:59:00+02:00')).toMatchObject({ limit: 'pause' });
    });

    it('resumes at Saturday 06:00 until next Friday', () => {
      expect(inForce(weekend, '2026-06-06T06:00:00+02:00')).toEqual({
        limit: BASE,
        reason: 'base',
        nextChangeAt: utc('2026-06-12T22:00:00+02:00'),
      });
    });
  });

  describe('across the end of the week', () => {
    it("finds next Monday's window from this Monday's end", () => {
      const monday = scheduleIn('Europe/Berlin', ['Mon', '08:00-10:00', '1 MB/s']);
      expect(inForce(monday, '2026-06-08T10:00:00+02:00').nextChangeAt).toBe(utc('2026-06-15T08:00:00+02:00'));
      expect(inForce(monday, '2026-06-14T23:00:00+02:00').nextChangeAt).toBe(utc('2026-06-15T08:00:00+02:00'));
    });

    it("carries Sunday night's window into Monday morning", () => {
      const sunday = scheduleIn('Europe/Berlin', ['Sun', '22:00-02:00', 'pause']);
      expect(inForce(sunday, '2026-06-08T01:59:00+02:00')).toEqual({
        limit: 'pause',
        reason: 'schedule: Sun 22:00-02:00',
        nextChangeAt: utc('2026-06-08T02:00:00+02:00'),
      });
      expect(inForce(sunday, '2026-06-08T02:00:00+02:00')).toMatchObject({ limit: BASE, nextChangeAt: utc('2026-06-14T22:00:00+02:00') });
    });
  });

  it('holds a window ending at 24:00 to the last instant of the day', () => {
    const evening = scheduleIn('Europe/Berlin', ['Sat', '18:00-24:00', '3 MB/s']);
    expect(inForce(evening, '2026-06-06T23:59:59.999+02:00')).toEqual({
      limit: 3_000_000,
      reason: 'schedule: Sat 18:00-24:00',
      nextChangeAt: utc('2026-06-07T00:00:00+02:00'),
    });
    expect(inForce(evening, '2026-06-07T00:00:00+02:00')).toMatchObject({ limit: BASE, reason: 'base' });
  });

  it('reports a change of window even when the limit stays the same', () => {
    const day = scheduleIn('Europe/Berlin', ['Mon-Fri', '09:00-19:00', '2 MB/s'], ['Mon-Fri', '19:00-22:00', '2 MB/s']);
    expect(inForce(day, '2026-06-08T18:00:00+02:00').nextChangeAt).toBe(utc('2026-06-08T19:00:00+02:00'));
    expect(inForce(day, '2026-06-08T19:00:00+02:00')).toMatchObject({ limit: 2_000_000, reason: 'schedule: Mon-Fri 19:00-22:00' });
  });

  it('passes over midnights at which the same window carries on', () => {
    const longWeekend = scheduleIn('Europe/Berlin', ['Fri-Mon', '00:00-24:00', '1 MB/s']);
    expect(inForce(longWeekend, '2026-06-06T12:00:00+02:00')).toEqual({
      limit: 1_000_000,
      reason: 'schedule: Fri-Mon 00:00-24:00',
      nextChangeAt: utc('2026-06-09T00:00:00+02:00'),
    });
  });

  it('has no next change when one window covers the whole week', () => {
    const always = scheduleIn('Europe/Berlin', ['Mon-Sun', '00:00-24:00', 'off']);
    expect(inForce(always, '2026-10-25T02:30:00+01:00')).toEqual({
      limit: null,
      reason: 'schedule: Mon-Sun 00:00-24:00',
      nextChangeAt: null,
    });
  });
});

describe('limitAt in America/New_York', () => {
  const office = scheduleIn('America/New_York', ['Mon-Fri', '09:00-17:00', '1 MB/s']);

  it('reads the clock in the schedule zone, not in UTC or Berlin', () => {
    // 14:00 in Berlin, 08:00 in New York.
    expect(inForce(office, '2026-06-08T12:00:00Z')).toEqual({
      limit: BASE,
      reason: 'base',
      nextChangeAt: utc('2026-06-08T09:00:00-04:00'),
    });
    expect(inForce(office, '2026-06-08T13:00:00Z')).toMatchObject({ limit: 1_000_000, reason: 'schedule: Mon-Fri 09:00-17:00' });
  });

  it('follows its own change to summer time, 2026-03-08, three weeks before Europe', () => {
    expect(inForce(office, '2026-03-06T17:00:00-05:00').nextChangeAt).toBe(utc('2026-03-09T09:00:00-04:00'));
  });

  it('keeps a window open through its repeated hour, 2026-11-01 02:00 → 01:00', () => {
    const night = scheduleIn('America/New_York', ['Sun', '01:30-03:00', 'pause']);
    expect(inForce(night, '2026-11-01T01:30:00-04:00')).toEqual({
      limit: 'pause',
      reason: 'schedule: Sun 01:30-03:00',
      nextChangeAt: utc('2026-11-01T03:00:00-05:00'),
    });
    expect(inForce(night, '2026-11-01T01:10:00-05:00')).toMatchObject({ limit: 'pause' });
  });
});
