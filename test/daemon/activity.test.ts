import { describe, expect, it } from 'vitest';
import { ActivityCounter } from '../../src/daemon/activity.js';
import type { Job } from '../../src/store/job.js';
import type { State } from '../../src/store/states.js';

function moved(counter: ActivityCounter, from: State | null, to: State, size = 1_000, duplicateOf: number | null = null): void {
  counter.record({ job: { state: to, size, duplicateOf } as Job, from, durationMs: 10 });
}

describe('ActivityCounter', () => {
  it('counts bytes once stored (a duplicate sent none), files done and files failed', () => {
    const counter = new ActivityCounter();
    moved(counter, null, 'waiting');
    moved(counter, 'queued', 'uploading');
    moved(counter, 'uploading', 'uploaded', 5_000);
    moved(counter, 'uploaded', 'done', 5_000);
    moved(counter, 'uploading', 'uploaded', 7_000, 1);
    moved(counter, 'uploaded', 'done', 7_000, 1);
    moved(counter, 'uploading', 'failed');
    expect(counter.totals()).toEqual({ filesDone: 2, bytesUploaded: 5_000, failures: 1 });
  });

  it('hands out a snapshot, not its running totals', () => {
    const counter = new ActivityCounter();
    const before = counter.totals();
    moved(counter, 'uploaded', 'done');
    expect(before.filesDone).toBe(0);
  });
});
