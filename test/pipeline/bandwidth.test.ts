import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { schedule } from '../../src/config/schedule.js';
import { Bandwidth, bandwidthLine, type BandwidthSettings, type BandwidthState } from '../../src/pipeline/bandwidth.js';

/** Monday 8 June 2026, 08:59:50 in Berlin: ten seconds before the sessions' window. */
const MONDAY_MORNING = Date.parse('2026-06-08T08:59:50+02:00');

const week = schedule.parse({
  timezone: 'Europe/Berlin',
  windows: [
    { days: 'Mon-Fri', hours: '09:00-19:00', limit: '2 MB/s' },
    { days: 'Mon', hours: '19:00-20:00', limit: 'pause' },
  ],
});

function settings(maxBytesPerSecond: number | null): BandwidthSettings {
  return { uploads: { maxBytesPerSecond, schedule: week }, downloads: { maxBytesPerSecond: 8_000_000 } };
}

describe('Bandwidth', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: MONDAY_MORNING });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sets the throttles at start and at each boundary of the schedule, and says so each time', async () => {
    const changes: BandwidthState[] = [];
    const bandwidth = new Bandwidth(settings(null), (state) => changes.push(state));
    bandwidth.start();
    expect(changes.map(({ limit, reason }) => [limit, reason])).toEqual([[null, 'base']]);
    expect(bandwidth.uploads.rate).toBeNull();
    expect(bandwidth.downloads.rate).toBe(8_000_000);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(bandwidth.uploads.rate).toBe(2_000_000);
    expect(changes.at(-1)).toMatchObject({ limit: 2_000_000, reason: 'schedule: Mon-Fri 09:00-19:00', nextChangeAt: Date.parse('2026-06-08T19:00:00+02:00') });
    expect(bandwidthLine(changes.at(-1)!, Date.now())).toBe(
      "Upload limit: 2 MB/s (schedule: Mon-Fri 09:00-19:00), changes in 10 h (2026-06-08T17:00:00.000Z); masters' downloads: 8 MB/s",
    );

    await vi.advanceTimersByTimeAsync(10 * 3600_000);
    expect(changes.at(-1)).toMatchObject({ limit: 'pause', reason: 'schedule: Mon 19:00-20:00' });
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(changes.at(-1)).toMatchObject({ limit: null, reason: 'base' });
    expect(changes).toHaveLength(4);
    bandwidth.stop();
  });

  it('applies new settings at once on reload, and only says so when something changed', () => {
    const changes: BandwidthState[] = [];
    const bandwidth = new Bandwidth(settings(null), (state) => changes.push(state));
    bandwidth.start();
    bandwidth.reload(settings(500_000));
    expect(bandwidth.uploads.rate).toBe(500_000);
    bandwidth.reload(settings(500_000));
    expect(changes.map(({ limit }) => limit)).toEqual([null, 500_000]);
    bandwidth.stop();
  });
});
