import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPoller } from '../../src/watch/poller.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** A pass that takes `durationMs` of (fake) time and records when it started. */
function slowPass(durationMs: number, starts: number[]) {
  return (signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      starts.push(Date.now());
      const timer = setTimeout(resolve, durationMs);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
}

describe('createPoller', () => {
  it('does nothing until started, then passes every interval counted from the end of the last pass', async () => {
    const starts: number[] = [];
    const t0 = Date.now();
    const poller = createPoller({ intervalMs: 1000, pass: slowPass(2500, starts), onError: () => {} });
    await vi.advanceTimersByTimeAsync(5000);
    expect(starts).toEqual([]);
    poller.start();
    poller.start();
    await vi.advanceTimersByTimeAsync(8000);
    // A pass longer than the interval stretches the period; passes never overlap, and one start() is one schedule.
    expect(starts.map((t) => t - t0)).toEqual([6000, 9500, 13000]);
    await poller.close();
  });

  it('keeps polling after a pass fails, reporting the error', async () => {
    const errors: unknown[] = [];
    let passes = 0;
    const poller = createPoller({
      intervalMs: 100,
      pass: async () => {
        passes += 1;
        if (passes === 1) throw new Error('share went away mid-walk');
      },
      onError: (error) => errors.push(error),
    });
    poller.start();
    await vi.advanceTimersByTimeAsync(350);
    expect(passes).toBe(3);
    expect(errors).toEqual([new Error('share went away mid-walk')]);
    await poller.close();
  });

  it('close aborts the pass in flight, waits for it, and schedules no more', async () => {
    const starts: number[] = [];
    const poller = createPoller({ intervalMs: 100, pass: slowPass(10_000, starts), onError: () => {} });
    poller.start();
    await vi.advanceTimersByTimeAsync(150);
    expect(starts).toHaveLength(1);
    await poller.close();
    poller.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(starts).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
