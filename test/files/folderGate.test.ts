import { describe, expect, it } from 'vitest';
import { FolderGate, FolderNotAnsweringError } from '../../src/files/folderGate.js';

/** An operation that returns when told to, as a call stuck on a hung share does when the share comes back. */
function held<T>(value: T): { operation: () => Promise<T>; release(): void; started: () => boolean } {
  let release!: () => void;
  let started = false;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    operation: () => {
      started = true;
      return done.then(() => value);
    },
    release: () => release(),
    started: () => started,
  };
}

function gate(timeoutMs = 60_000, maxInFlight = 2) {
  const changes: boolean[] = [];
  const folderGate = new FolderGate({ folder: '/mnt/nas', maxInFlight, timeoutMs, onChange: (answering) => changes.push(answering) });
  return { gate: folderGate, changes };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('FolderGate', () => {
  it('runs at most maxInFlight operations at once, the rest in order as slots free', async () => {
    const { gate: g } = gate();
    const ops = [held(1), held(2), held(3)];
    const results = ops.map((op) => g.run(op.operation));
    await tick();
    expect(ops.map((op) => op.started())).toEqual([true, true, false]);
    ops[1]!.release();
    expect(await results[1]).toBe(2);
    expect(ops[2]!.started()).toBe(true);
    ops[0]!.release();
    ops[2]!.release();
    expect(await Promise.all(results)).toEqual([1, 2, 3]);
  });

  it('passes an operation\'s own error on, and one thrown before its promise', async () => {
    const { gate: g } = gate();
    await expect(g.run(() => Promise.reject(new Error('EIO')))).rejects.toThrow('EIO');
    await expect(
      g.run(() => {
        throw new Error('thrown');
      }),
    ).rejects.toThrow('thrown');
    expect(await g.run(async () => 'still fine')).toBe('still fine');
  });

  it('marks the folder not answering when an operation overruns: every caller, running or queued, and later ones fail at once, until all stuck ones return', async () => {
    const { gate: g, changes } = gate(50, 2);
    const stuck = held('late');
    const first = g.run(stuck.operation);
    const alsoStuck = held('later');
    const beside = g.run(alsoStuck.operation);
    const queued = held('never run');
    const third = g.run(queued.operation);
    await expect(first).rejects.toBeInstanceOf(FolderNotAnsweringError);
    await expect(beside).rejects.toThrow(/\/mnt\/nas is not answering/);
    await expect(third).rejects.toThrow(/\/mnt\/nas is not answering/);
    expect(queued.started()).toBe(false);
    expect(g.notAnsweringSince).toBeTypeOf('number');
    expect(g.inKernel).toBe(2);
    expect(changes).toEqual([false]);
    await expect(g.run(async () => 'refused')).rejects.toThrow(/no answer for \d+ s/);

    stuck.release();
    await tick();
    expect(changes).toEqual([false]);
    alsoStuck.release();
    await tick();
    expect(changes).toEqual([false, true]);
    expect(g.notAnsweringSince).toBeUndefined();
    expect(g.inKernel).toBe(0);
    expect(await g.run(async () => 'answers')).toBe('answers');
  });

  it('lets the callers of running and queued operations go on close, refuses new work, and says nothing of an overrun after', async () => {
    const { gate: g, changes } = gate(30, 1);
    const running = held('x');
    const inKernel = g.run(running.operation);
    const waiting = g.run(async () => 'never');
    g.close();
    await expect(inKernel).rejects.toThrow(/stopping/);
    await expect(waiting).rejects.toThrow(/stopping/);
    await expect(g.run(async () => 'no')).rejects.toThrow(/stopping/);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(g.notAnsweringSince).toBeUndefined();
    expect(g.inKernel).toBe(1);
    running.release();
    await tick();
    expect(g.inKernel).toBe(0);
    expect(changes).toEqual([]);
  });
});
