import { appendFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Settler, statFile, type FileStat, type SettlerOptions } from '../../src/watch/settle.js';
import { makeTempDir } from '../helpers/tempDir.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await makeTempDir('cryomix-watch-')));
afterEach(async () => {
  vi.useRealTimers();
  await cleanup();
});

const SETTLE_MS = 1000;
/** How long the first stat of a newly sighted file waits (settle.ts: a tenth of settleMs, at most 100 ms). */
const FIRST_LOOK_MS = 100;

/**
 * A real stat of real files that resolves on the microtask queue, so that
 * fake timers can drive the Settler without waiting for libuv.
 */
async function syncStat(path: string): Promise<FileStat | null> {
  const stats = statSync(path, { throwIfNoEntry: false });
  return stats ? { size: stats.size, mtimeMs: stats.mtimeMs } : null;
}

interface Settled {
  path: string;
  size: number;
  stableForMs: number;
  at: number;
}

function harness(overrides: Partial<SettlerOptions> = {}) {
  const settled: Settled[] = [];
  const gone: string[] = [];
  const errors: { path: string; error: unknown }[] = [];
  let stats = 0;
  const settler = new Settler({
    settleMs: SETTLE_MS,
    stat: (path) => {
      stats++;
      return syncStat(path);
    },
    onSettled: async (path, stat, stableForMs) => {
      settled.push({ path, size: stat.size, stableForMs, at: performance.now() });
      return 'done';
    },
    onGone: (path) => gone.push(path),
    onError: (path, error) => errors.push({ path, error }),
    ...overrides,
  });
  return { settler, settled, gone, errors, statCount: () => stats };
}

describe('Settler (fake timers, real files)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it('settles a file appended in bursts only after the last burst', async () => {
    const path = join(dir, 'mix.wav');
    const { settler, settled } = harness();
    const start = performance.now();
    writeFileSync(path, Buffer.alloc(100));
    settler.touch(path);
    for (let burst = 1; burst <= 10; burst++) {
      await vi.advanceTimersByTimeAsync(SETTLE_MS * 0.6);
      appendFileSync(path, Buffer.alloc(100));
      settler.touch(path);
    }
    const lastBurst = performance.now();
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);

    expect(settled).toHaveLength(1);
    expect(settled[0]!.size).toBe(1100);
    expect(settled[0]!.at - lastBurst).toBeGreaterThanOrEqual(SETTLE_MS);
    expect(settled[0]!.at - lastBurst).toBeLessThanOrEqual(2 * SETTLE_MS);
    expect(lastBurst - start).toBe(6 * SETTLE_MS);
    expect(settler.size).toBe(0);
  });

  it('notices growth from stat alone, without touches (polling sees nothing but the file)', async () => {
    const path = join(dir, 'mix.wav');
    const { settler, settled } = harness();
    writeFileSync(path, 'a');
    settler.touch(path);
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(SETTLE_MS * 0.6);
      appendFileSync(path, 'a');
    }
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);
    expect(settled.map((s) => s.size)).toEqual([6]);
  });

  it('settles mid-way when a pause is longer than settleMs (the WAV header check guards DAW files)', async () => {
    const path = join(dir, 'mix.wav');
    const { settler, settled } = harness();
    writeFileSync(path, Buffer.alloc(10));
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 2.5);
    appendFileSync(path, Buffer.alloc(10));
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 2.5);
    expect(settled.map((s) => s.size)).toEqual([10, 20]);
  });

  it('coalesces a touch storm into one timer and one onSettled', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    const { settler, settled, statCount } = harness();
    for (let i = 0; i < 10_000; i++) settler.touch(path);
    await vi.advanceTimersByTimeAsync(SETTLE_MS / 2);
    for (let i = 0; i < 10_000; i++) settler.touch(path);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);
    expect(settled).toHaveLength(1);
    // Baseline, the check the late touches pushed back, and the settling check.
    expect(statCount()).toBe(3);
    expect(settled[0]!.stableForMs).toBeGreaterThanOrEqual(SETTLE_MS);
  });

  it('keeps the quiet period running from the last touch even when the stat never changes', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    const { settler, settled } = harness();
    settler.touch(path);
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(SETTLE_MS * 0.9);
      settler.touch(path);
    }
    expect(settled).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(settled).toHaveLength(1);
  });

  it('takes its first look a moment after the first sighting: a file still being written when it was created settles in one settleMs', async () => {
    const path = join(dir, 'bounce.wav');
    const { settler, settled } = harness();
    const start = performance.now();
    // Sighted at its creation (an inotify IN_CREATE), before the writer's quick write has ended.
    writeFileSync(path, Buffer.alloc(0));
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(FIRST_LOOK_MS / 2);
    appendFileSync(path, Buffer.alloc(4096));
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(FIRST_LOOK_MS / 2 + SETTLE_MS);
    expect(settled).toHaveLength(1);
    expect(settled[0]!.size).toBe(4096);
    expect(settled[0]!.at - start).toBe(FIRST_LOOK_MS + SETTLE_MS);
  });

  it('reports files that disappear, and paths that never existed, as gone', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    const { settler, settled, gone } = harness();
    settler.touch(path);
    settler.touch(join(dir, 'never.wav'));
    await vi.advanceTimersByTimeAsync(FIRST_LOOK_MS);
    expect(gone).toEqual([join(dir, 'never.wav')]);
    unlinkSync(path);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 2);
    expect(gone).toEqual([join(dir, 'never.wav'), path]);
    expect(settled).toHaveLength(0);
    expect(settler.size).toBe(0);
  });

  it("asks again after 'wait' with a growing stableForMs, and starts over when the file changes", async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'header');
    const answers: string[] = [];
    const { settler, settled } = harness({
      onSettled: async (p, stat, stableForMs) => {
        settled.push({ path: p, size: stat.size, stableForMs, at: performance.now() });
        const answer = settled.length < 6 ? 'wait' : 'done';
        answers.push(answer);
        return answer;
      },
    });
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3.5);
    expect(settled.map((s) => s.stableForMs)).toEqual([SETTLE_MS, 2 * SETTLE_MS, 3 * SETTLE_MS]);

    appendFileSync(path, 'samples');
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 4);
    expect(settled.slice(3).map((s) => [s.size, s.stableForMs])).toEqual([
      [13, SETTLE_MS],
      [13, 2 * SETTLE_MS],
      [13, 3 * SETTLE_MS],
    ]);
    expect(answers.at(-1)).toBe('done');
    expect(settler.size).toBe(0);
  });

  it('never runs onSettled twice at once for a path; an unchanged file is not asked again after done', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    let release!: () => void;
    let running = 0;
    let maxRunning = 0;
    const { settler, settled } = harness({
      onSettled: async (p, stat, stableForMs) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        settled.push({ path: p, size: stat.size, stableForMs, at: performance.now() });
        await new Promise<void>((resolve) => (release = resolve));
        running--;
        return 'done';
      },
    });
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(FIRST_LOOK_MS + SETTLE_MS);
    expect(settled).toHaveLength(1);
    for (let i = 0; i < 5; i++) {
      settler.touch(path);
      await vi.advanceTimersByTimeAsync(SETTLE_MS * 2);
    }
    release();
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);
    expect(maxRunning).toBe(1);
    expect(settled).toHaveLength(1);
    expect(settler.size).toBe(0);
  });

  it('settles the new version when the file changed while onSettled ran', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    let release!: () => void;
    const { settler, settled } = harness({
      onSettled: async (p, stat, stableForMs) => {
        settled.push({ path: p, size: stat.size, stableForMs, at: performance.now() });
        if (settled.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return 'done';
      },
    });
    settler.touch(path);
    await vi.advanceTimersByTimeAsync(FIRST_LOOK_MS + SETTLE_MS);
    appendFileSync(path, 'yz');
    settler.touch(path);
    release();
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);
    expect(settled.map((s) => s.size)).toEqual([1, 3]);
    expect(settler.size).toBe(0);
  });

  it('reports a throwing stat or onSettled to onError and stops tracking the path', async () => {
    const badPath = join(dir, 'bad\0name.wav');
    const { settler, errors } = harness();
    settler.touch(badPath);
    await vi.advanceTimersByTimeAsync(FIRST_LOOK_MS);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.path).toBe(badPath);
    expect(errors[0]!.error).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(settler.size).toBe(0);

    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    const failing = harness({
      onSettled: async () => {
        throw new Error('database is locked');
      },
    });
    failing.settler.touch(path);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);
    expect(failing.errors.map((e) => (e.error as Error).message)).toEqual(['database is locked']);
    expect(failing.settler.size).toBe(0);
  });

  it('forgets a path, and ignores everything after close', async () => {
    const a = join(dir, 'a.wav');
    const b = join(dir, 'b.wav');
    writeFileSync(a, 'a');
    writeFileSync(b, 'b');
    const { settler, settled, gone } = harness();
    settler.touch(a);
    settler.touch(b);
    settler.forget(a);
    expect(settler.size).toBe(1);
    await vi.advanceTimersByTimeAsync(SETTLE_MS / 2);
    settler.close();
    settler.touch(a);
    expect(settler.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(SETTLE_MS * 3);
    expect(settled).toHaveLength(0);
    expect(gone).toHaveLength(0);
  });

  it('refuses a nonsensical settleMs', () => {
    expect(() => harness({ settleMs: -1 })).toThrow('Expected `settleMs` to be a number from 0 and up, got `-1`');
    expect(() => harness({ settleMs: Number.NaN })).toThrow(RangeError);
  });
});

describe('Settler (real timers, real stat)', () => {
  it('settles a real file with statFile and reports it gone after unlink', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, Buffer.alloc(1234));
    const { settler, settled, gone } = harness({ settleMs: 60, stat: statFile });
    settler.touch(path);
    await vi.waitFor(() => expect(settled).toHaveLength(1), { timeout: 5000, interval: 20 });
    expect(settled[0]!.size).toBe(1234);
    expect(settled[0]!.stableForMs).toBeGreaterThanOrEqual(60);

    unlinkSync(path);
    settler.touch(path);
    await vi.waitFor(() => expect(gone).toEqual([path]), { timeout: 5000, interval: 20 });
  });

  // Real timers: fake-timer libraries scan all timers per tick, Node's timer lists do not.
  it('tracks 10,000 files at once', async () => {
    const paths = Array.from({ length: 10_000 }, (_, i) => join(dir, `take-${i}.wav`));
    for (const path of paths) writeFileSync(path, path);
    const { settler, settled } = harness({ settleMs: 100, stat: statFile });
    for (const path of paths) settler.touch(path);
    expect(settler.size).toBe(10_000);
    await vi.waitFor(() => expect(settled).toHaveLength(10_000), { timeout: 20_000, interval: 50 });
    expect(new Set(settled.map((s) => s.path)).size).toBe(10_000);
    expect(settler.size).toBe(0);
  });

  it('does not keep the process alive while files settle', async () => {
    const path = join(dir, 'mix.wav');
    writeFileSync(path, 'x');
    const refTimers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = refTimers();
    const { settler } = harness({ settleMs: 60_000, stat: statFile });
    settler.touch(path);
    await vi.waitFor(() => expect(statFile(path)).resolves.not.toBeNull());
    await new Promise((resolve) => setImmediate(resolve));
    expect(settler.size).toBe(1);
    expect(refTimers()).toBe(before);
    settler.close();
  });

  it('statFile treats ENOENT and ENOTDIR as gone and rethrows the rest', async () => {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    expect(await statFile(join(dir, 'missing'))).toBeNull();
    expect(await statFile(join(file, 'child.wav'))).toBeNull();
    expect(await statFile(file)).toMatchObject({ size: 1 });
    await expect(statFile(join(dir, 'bad\0'))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});
