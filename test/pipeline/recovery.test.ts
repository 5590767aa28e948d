import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimAvailable, recoverOrphanedUploads } from '../../src/pipeline/recovery.js';
import { openDatabase } from '../../src/store/db.js';
import { JobStore, LEASE_MS } from '../../src/store/jobs.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();

/** A pid that certainly belongs to no running process: a child that has exited. */
const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;

function uploadingJob(store: JobStore, name: string, owner: { pid: number; leaseUntil: number }) {
  const job = store.createVersion({ folder: '/in', path: `/in/${name}`, size: 1, mtimeMs: 1 });
  store.transition(job.id, 'queued');
  store.transition(job.id, 'uploading', { ownerPid: owner.pid, leaseUntil: owner.leaseUntil });
  return job;
}

describe('recoverOrphanedUploads', () => {
  it('resumes uploads whose uploader died or stopped renewing, and leaves live claims alone', () => {
    const store = new JobStore(openDatabase(join(tempDir(), 'state.db')));
    const now = Date.now();
    // The test runner's parent process stands in for a live `upload FILE` in another process.
    const live = uploadingJob(store, 'live.wav', { pid: process.ppid, leaseUntil: now + LEASE_MS });
    const crashed = uploadingJob(store, 'crashed.wav', { pid: deadPid, leaseUntil: now + LEASE_MS });
    const stale = uploadingJob(store, 'stale.wav', { pid: process.ppid, leaseUntil: now - 1 });
    const reusedPid = uploadingJob(store, 'ours-before-restart.wav', { pid: process.pid, leaseUntil: now + LEASE_MS });
    const running = uploadingJob(store, 'running.wav', { pid: process.pid, leaseUntil: now + LEASE_MS });

    recoverOrphanedUploads(store, (id) => id === running.id, now);

    expect(store.get(live.id).state).toBe('uploading');
    expect(store.get(running.id).state).toBe('uploading');
    for (const job of [crashed, stale, reusedPid]) {
      expect(store.get(job.id)).toMatchObject({ state: 'retrying', nextAttemptAt: now, error: expect.stringMatching(/interrupted/) });
    }
  });
});

describe('claims on mastering steps', () => {
  it('are refused while another live process holds a fresh one, and granted otherwise', () => {
    const store = new JobStore(openDatabase(join(tempDir(), 'state.db')));
    const now = Date.now();
    const mastering = (name: string, owner: { pid: number; leaseUntil: number }) => {
      const job = store.createVersion({ folder: '/in', path: `/in/${name}`, size: 1, mtimeMs: 1 });
      for (const state of ['queued', 'uploading', 'uploaded'] as const) store.transition(job.id, state);
      return store.transition(job.id, 'mastering', { nextAttemptAt: now, ownerPid: owner.pid, leaseUntil: owner.leaseUntil });
    };
    const heldByLive = mastering('held.wav', { pid: process.ppid, leaseUntil: now + LEASE_MS });
    const heldByDead = mastering('dead.wav', { pid: deadPid, leaseUntil: now + LEASE_MS });
    const lapsed = mastering('lapsed.wav', { pid: process.ppid, leaseUntil: now - 1 });
    const ours = mastering('ours.wav', { pid: process.pid, leaseUntil: now + LEASE_MS });

    expect(store.claimStep(heldByLive.id, (job) => claimAvailable(job, now))).toBe(false);
    for (const job of [heldByDead, lapsed, ours]) {
      expect(store.claimStep(job.id, (j) => claimAvailable(j, now))).toBe(true);
      expect(store.get(job.id).ownerPid).toBe(process.pid);
    }
  });
});
