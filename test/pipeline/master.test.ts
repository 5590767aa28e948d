import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { CryomixApi } from '../../src/cryomix/api.js';
import { runFollowUp } from '../../src/pipeline/followUps.js';
import { mastersDirectoryFor, mixMastersDirectory, runMasteringStep, type MasteringContext, type MasteringPlan } from '../../src/pipeline/master.js';
import { rearm } from '../../src/pipeline/rearm.js';
import { openDatabase } from '../../src/store/db.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import { LEASE_MS, type JobStore } from '../../src/store/store.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();

async function uploadedJob(store: JobStore) {
  const job = await store.createVersion({ folder: '/in', path: '/in/mix.wav', size: 1, mtimeMs: 1 });
  for (const state of ['queued', 'uploading'] as const) await store.transition(job.id, state);
  await store.transition(job.id, 'uploaded', { md5: 'bWQ1', sha256: 'abc' });
  return await store.transition(job.id, 'mastering', { nextAttemptAt: Date.now() });
}

/** An API that must not be called: any call fails the test. */
const silentApi = new Proxy({}, { get: (_target, name) => () => Promise.reject(new Error(`unexpected API call: ${String(name)}`)) }) as CryomixApi;

/** A context for steps that need no API call, with the folder's plan as given. */
function quietContext(store: JobStore, plan: MasteringContext['plan']): MasteringContext {
  return {
    store,
    api: silentApi,
    logger: pino({ level: 'silent' }),
    backoff: { initialDelayMs: 100, maxDelayMs: 1000 },
    stallTimeoutMs: 1000,
    urlExpirySeconds: 900,
    plan,
    onUnauthorized: () => {},
  };
}

describe('rearm after a mastering failure', () => {
  it('starts mastering anew only when the API reported the job failed or cancelled', async () => {
    const store = new SqliteJobStore(openDatabase(join(tempDir(), 'state.db')));
    const reported = await uploadedJob(store);
    await store.updateStep(reported.id, { masteringRequested: true });
    await store.transition(reported.id, 'failed', { masteringStatus: 'failed', error: 'the API says failed' });
    expect(await rearm(store, await store.get(reported.id))).toMatchObject({ state: 'mastering', masteringRequested: false });

    const other = await store.createVersion({ folder: '/in', path: '/in/other.wav', size: 1, mtimeMs: 1 });
    for (const state of ['queued', 'uploading'] as const) await store.transition(other.id, state);
    await store.transition(other.id, 'uploaded', { md5: 'bWQ1' });
    await store.transition(other.id, 'mastering', { nextAttemptAt: Date.now(), masteringRequested: true, masteringStatus: 'processing' });
    await store.transition(other.id, 'failed', { error: 'an unsafe download URL' });
    // A job may be running at the API: it is asked about before anything is started again.
    expect(await rearm(store, await store.get(other.id))).toMatchObject({ state: 'mastering', masteringRequested: true });
  });

  it('sends a failed duplicate back to mastering, not to an upload: its bytes are stored already, as its original', async () => {
    const store = new SqliteJobStore(openDatabase(join(tempDir(), 'state.db')));
    const original = await uploadedJob(store);
    const copy = await store.createVersion({ folder: '/in', path: '/in/copy.wav', size: 1, mtimeMs: 1 });
    for (const state of ['queued', 'uploading'] as const) await store.transition(copy.id, state);
    await store.transition(copy.id, 'uploaded', { sha256: 'abc', duplicateOf: original.id });
    await store.transition(copy.id, 'mastering', { nextAttemptAt: Date.now(), masteringRequested: true });
    await store.transition(copy.id, 'failed', { masteringStatus: 'failed', error: 'the API says failed' });
    expect(await rearm(store, await store.get(copy.id))).toMatchObject({ state: 'mastering', masteringRequested: false });
  });
});

describe('a mastering job whose folder lost its mastering block', () => {
  it('is left for whoever knows the plan, with a note, not failed', async () => {
    const store = new SqliteJobStore(openDatabase(join(tempDir(), 'state.db')));
    const job = await uploadedJob(store);
    await runMasteringStep(job.id, quietContext(store, () => undefined), new AbortController().signal);
    const after = await store.get(job.id);
    expect(after.state).toBe('mastering');
    expect(after.error).toMatch(/has no mastering block: run "cryomix-watch upload --master"/);
    expect(after.nextAttemptAt! - Date.now()).toBeGreaterThan(30 * 60_000);
  });
});

describe('the onDone hook', () => {
  it('is due in the commit that makes the job done, keeps its claim while it runs, and is no longer due once it has run', async () => {
    const store = new SqliteJobStore(openDatabase(join(tempDir(), 'state.db')));
    const job = await uploadedJob(store);
    await store.transition(job.id, 'downloading', { nextAttemptAt: Date.now() });
    const outputDir = tempDir();
    const masters = mixMastersDirectory(outputDir, job);
    // Already downloaded: the step only makes it durable and finishes the job.
    mkdirSync(masters, { recursive: true });
    writeFileSync(join(masters, 'FinalMaster.wav'), 'x');
    await store.recordDownload(job.id, { name: 'FinalMaster.wav', path: join(masters, 'FinalMaster.wav'), bytes: 1, sha256: 'abc' });
    const started = join(outputDir, 'hook started');
    const finished = join(outputDir, 'hook finished');
    const hook = [process.execPath, '-e', `const fs = require('fs'); fs.writeFileSync(${JSON.stringify(started)}, process.env.CRYOMIX_SESSION_ID); setTimeout(() => fs.writeFileSync(${JSON.stringify(finished)}, ''), 300)`];
    const context = quietContext(store, () => ({ settings: {}, outputDir, files: ['FinalMaster.wav'], pollIntervalMs: 1000, timeoutMs: 3_600_000, onDone: hook }));
    await runMasteringStep(job.id, context, new AbortController().signal);
    expect((await store.get(job.id)).state).toBe('done');
    expect(await store.followUps(job.id)).toMatchObject([{ kind: 'on-done', plan: { masters, sessionId: job.sessionId } }]);
    expect(existsSync(started)).toBe(false);
    // Only the claim's renewal timer is faked, so that renewals come due while the real hook runs.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const run = runFollowUp({ jobId: job.id, kind: 'on-done' }, { ...context, afterUpload: () => ({ action: 'keep' }) }, new AbortController().signal);
      await vi.waitFor(() => expect(existsSync(started)).toBe(true), { timeout: 15_000 });
      vi.advanceTimersByTime(LEASE_MS);
      expect((await store.followUps(job.id))[0]?.ownerPid).toBe(process.pid);
      await run;
    } finally {
      vi.useRealTimers();
    }
    expect(existsSync(finished)).toBe(true);
    expect(readFileSync(started, 'utf8')).toBe(job.sessionId);
    expect(await store.followUps(job.id)).toEqual([]);
  });
});

describe('where a job\'s masters go', () => {
  const plan = (folder: string | undefined, outputDir: string): MasteringPlan => ({ settings: {}, outputDir, files: [], pollIntervalMs: 1, timeoutMs: 1, ...(folder === undefined ? {} : { folder }) });
  const mix = { folder: '/srv/exports', path: '/srv/exports/client/Song.wav' };

  it('is under this machine\'s mount of the folder when another machine, mounting the share elsewhere, made the plan', () => {
    expect(mastersDirectoryFor(plan('/mnt/nas/exports', '/mnt/nas/exports/Masters'), mix)).toBe('/srv/exports/Masters/client/Song.wav');
  });

  it('is the plan\'s own outputDir when made for this mount, when outside the folder, or when stored before plans named their folder', () => {
    expect(mastersDirectoryFor(plan('/srv/exports', '/srv/exports/Masters'), mix)).toBe('/srv/exports/Masters/client/Song.wav');
    expect(mastersDirectoryFor(plan('/mnt/nas/exports', '/srv/masters'), mix)).toBe('/srv/masters/client/Song.wav');
    expect(mastersDirectoryFor(plan(undefined, '/mnt/nas/exports/Masters'), mix)).toBe('/mnt/nas/exports/Masters/client/Song.wav');
  });
});
