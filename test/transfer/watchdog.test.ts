import { afterEach, describe, expect, it, vi } from 'vitest';
import { StallWatchdog, drainAllowanceMs } from '../../src/transfer/watchdog.js';

describe('StallWatchdog', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts after a window without a poke, and not while poked', () => {
    vi.useFakeTimers();
    const watchdog = new StallWatchdog(300, (ms) => new Error(`stalled ${ms}`));
    for (let i = 0; i < 10; i += 1) {
      vi.advanceTimersByTime(200);
      watchdog.poke();
    }
    expect(watchdog.signal.aborted).toBe(false);
    vi.advanceTimersByTime(300);
    expect(watchdog.signal.aborted).toBe(true);
    expect((watchdog.signal.reason as Error).message).toBe('stalled 300');
  });

  it('does not count time spent on an excused wait (our own cap), and starts the window again after it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const watchdog = new StallWatchdog(300, (ms) => new Error(`stalled ${ms}`));
    const capped = watchdog.excuse(new Promise((resolve) => setTimeout(resolve, 10_000)));
    watchdog.poke();
    await vi.advanceTimersByTimeAsync(10_000);
    await capped;
    expect(watchdog.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(299);
    expect(watchdog.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(watchdog.signal.aborted).toBe(true);
  });

  it('still counts the part of the window that had passed before an excused wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const watchdog = new StallWatchdog(300, (ms) => new Error(`stalled ${ms}`));
    await vi.advanceTimersByTimeAsync(200);
    const capped = watchdog.excuse(new Promise((resolve) => setTimeout(resolve, 10_000)));
    await vi.advanceTimersByTimeAsync(10_000);
    await capped;
    await vi.advanceTimersByTimeAsync(99);
    expect(watchdog.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(watchdog.signal.aborted).toBe(true);
  });

  it('gives the whole window after a movement that follows an excused wait, however little was left before it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const watchdog = new StallWatchdog(300, (ms) => new Error(`stalled ${ms}`));
    // A slow read used most of the window, then the next piece waited for the cap.
    await vi.advanceTimersByTimeAsync(290);
    const capped = watchdog.excuse(new Promise((resolve) => setTimeout(resolve, 1_000)));
    await vi.advanceTimersByTimeAsync(1_000);
    await capped;
    watchdog.poke();
    await vi.advanceTimersByTimeAsync(299);
    expect(watchdog.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(watchdog.signal.aborted).toBe(true);
  });

  it('does not count the excused time twice when something moved during the wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const watchdog = new StallWatchdog(300, (ms) => new Error(`stalled ${ms}`));
    const capped = watchdog.excuse(new Promise((resolve) => setTimeout(resolve, 10_000)));
    // An earlier piece's write called back late in the wait.
    await vi.advanceTimersByTimeAsync(9_990);
    watchdog.poke();
    await vi.advanceTimersByTimeAsync(10);
    await capped;
    await vi.advanceTimersByTimeAsync(299);
    expect(watchdog.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(watchdog.signal.aborted).toBe(true);
  });

  it('uses the new window after a restart, and stays quiet once stopped', () => {
    vi.useFakeTimers();
    const watchdog = new StallWatchdog(300, (ms) => new Error(`stalled ${ms}`));
    watchdog.restart(1_000);
    vi.advanceTimersByTime(900);
    expect(watchdog.signal.aborted).toBe(false);
    watchdog.stop();
    watchdog.restart(10);
    vi.advanceTimersByTime(5_000);
    expect(watchdog.signal.aborted).toBe(false);
  });
});

describe('drainAllowanceMs', () => {
  it('covers a full 4 MiB send buffer at 256 kbit/s, and less for a smaller file', () => {
    expect(drainAllowanceMs(1024 * 1024 * 1024)).toBe(128_000);
    expect(drainAllowanceMs(32 * 1024)).toBe(1_000);
  });
});
