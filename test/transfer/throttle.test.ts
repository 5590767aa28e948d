import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Throttle } from '../../src/transfer/throttle.js';

/** Takes `count` chunks of `bytes` one after the other, as one transfer does, counting the grants. */
function transfer(throttle: Throttle, count: number, bytes: number, signal?: AbortSignal) {
  const state = { granted: 0, done: (async () => {})() };
  state.done = (async () => {
    for (let i = 0; i < count; i++) {
      await throttle.take(bytes, signal);
      state.granted++;
    }
  })();
  return state;
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('Throttle', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets everything through at once without a cap', async () => {
    const throttle = new Throttle(null);
    const one = transfer(throttle, 100, 65_536);
    await flush();
    expect(one.granted).toBe(100);
  });

  it('holds one transfer to the rate, whatever the chunk size', async () => {
    const throttle = new Throttle(1_000);
    const one = transfer(throttle, 30, 250);
    await flush();
    expect(one.granted).toBe(1);
    await vi.advanceTimersByTimeAsync(5_000);
    // 1,000 bytes a second: 4 chunks of 250 a second, after the first.
    expect(one.granted).toBe(21);
  });

  it('shares the rate between transfers, taking turns', async () => {
    const throttle = new Throttle(1_000);
    const a = transfer(throttle, 100, 100);
    const b = transfer(throttle, 100, 100);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(a.granted + b.granted).toBeGreaterThanOrEqual(100);
    expect(a.granted + b.granted).toBeLessThanOrEqual(102);
    expect(Math.abs(a.granted - b.granted)).toBeLessThanOrEqual(1);
  });

  it('applies a new rate to the transfers already waiting, at once', async () => {
    const throttle = new Throttle(10);
    const one = transfer(throttle, 3, 1_000_000);
    await flush();
    expect(one.granted).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(one.granted).toBe(1);
    throttle.setRate(null);
    await flush();
    expect(one.granted).toBe(3);
  });

  it('banks at most a tenth of a second of credit while idle', async () => {
    const throttle = new Throttle(1_000);
    await vi.advanceTimersByTimeAsync(60_000);
    const one = transfer(throttle, 10, 100);
    await flush();
    // 100 bytes banked let one chunk through, and the balance at 0 a second one.
    expect(one.granted).toBe(2);
  });

  it('lets a chunk through without waiting while there is credit, and charges it', async () => {
    const throttle = new Throttle(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(throttle.tryTake(100)).toBe(true);
    expect(throttle.tryTake(100)).toBe(true);
    expect(throttle.tryTake(100)).toBe(false);
    expect(new Throttle(null).tryTake(1e9)).toBe(true);
  });

  it('forgets what was owed under a cap after a time without one', async () => {
    const throttle = new Throttle(1_000);
    expect(throttle.tryTake(65_536)).toBe(true);
    throttle.setRate(null);
    await vi.advanceTimersByTimeAsync(1_000);
    throttle.setRate(1_000);
    expect(throttle.tryTake(100)).toBe(true);
  });

  it('gives up the turn of an aborted transfer to the next one', async () => {
    const throttle = new Throttle(100);
    const controller = new AbortController();
    const first = transfer(throttle, 1, 1_000);
    await flush();
    const aborted = transfer(throttle, 1, 1_000, controller.signal);
    const after = transfer(throttle, 1, 100);
    controller.abort(new Error('stopped'));
    await expect(aborted.done).rejects.toThrow('stopped');
    await vi.advanceTimersByTimeAsync(10_000);
    expect([first.granted, after.granted]).toEqual([1, 1]);
  });
});
