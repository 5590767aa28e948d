import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AfterUpload } from '../../src/pipeline/afterUpload.js';
import { runFollowUp, type FollowUpContext } from '../../src/pipeline/followUps.js';
import { openDatabase } from '../../src/store/db.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import type { JobStore } from '../../src/store/store.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();

/** A stored upload of a real file, `done`, with its after-upload step due. */
async function storedMix(plan: AfterUpload | null) {
  const dir = tempDir();
  const inbox = join(dir, 'inbox');
  mkdirSync(inbox);
  const path = join(inbox, 'mix.wav');
  writeFileSync(path, 'uploaded bytes');
  const { size, mtimeMs } = statSync(path);
  const store = new SqliteJobStore(openDatabase(join(dir, 'state.db')));
  const job = await store.createVersion({ folder: inbox, path, size, mtimeMs });
  for (const state of ['queued', 'uploading', 'uploaded'] as const) await store.transition(job.id, state);
  await store.transition(job.id, 'done', {}, [{ kind: 'after-upload', plan }]);
  return { dir, inbox, path, store, job };
}

function context(store: JobStore, options: Partial<FollowUpContext> = {}): FollowUpContext {
  return { store, logger: pino({ level: 'silent' }), backoff: { initialDelayMs: 60_000, maxDelayMs: 120_000 }, afterUpload: () => ({ action: 'keep' }), ...options };
}

describe('an after-upload follow-up', () => {
  it('without a plan (a move that failed before migration 008) does what the folder says now', async () => {
    const { dir, inbox, path, store, job } = await storedMix(null);
    const moveTo = join(dir, 'uploaded');
    await runFollowUp({ jobId: job.id, kind: 'after-upload' }, context(store, { afterUpload: () => ({ action: 'move', folder: inbox, moveTo }) }), new AbortController().signal);
    expect(existsSync(join(moveTo, 'mix.wav'))).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(await store.followUps(job.id)).toEqual([]);
  });

  it('stored by a machine that mounts the share elsewhere, does what this machine\'s folder says, never that machine\'s paths', async () => {
    const elsewhere = join(tempDir(), 'mnt', 'nas', 'exports');
    const { dir, inbox, path, store, job } = await storedMix({ action: 'move', folder: elsewhere, moveTo: join(elsewhere, 'uploaded') });
    const moveTo = join(dir, 'uploaded');
    await runFollowUp({ jobId: job.id, kind: 'after-upload' }, context(store, { afterUpload: () => ({ action: 'move', folder: inbox, moveTo }) }), new AbortController().signal);
    expect(existsSync(join(moveTo, 'mix.wav'))).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(elsewhere)).toBe(false);
  });

  it('without a plan, says what the folder setting tried when it fails', async () => {
    const { dir, inbox, store, job } = await storedMix(null);
    const moveTo = join(dir, 'uploaded');
    mkdirSync(moveTo);
    execFileSync('chattr', ['+i', moveTo]);
    try {
      await runFollowUp({ jobId: job.id, kind: 'after-upload' }, context(store, { afterUpload: () => ({ action: 'move', folder: inbox, moveTo }) }), new AbortController().signal);
    } finally {
      execFileSync('chattr', ['-i', moveTo]);
    }
    expect(await store.followUps(job.id)).toMatchObject([{ failures: 1, error: expect.stringMatching(/^move pending: EPERM/) }]);
  });

  it('waits for an unmounted folder instead of taking its file for gone', async () => {
    const { inbox, path, store, job } = await storedMix({ action: 'delete' });
    const away = { run: <T>(operation: () => Promise<T>) => operation(), rootPresent: () => Promise.resolve(false) };
    // What a share that went away looks like from here: the file cannot be found.
    renameSync(path, `${path}.elsewhere`);
    await runFollowUp({ jobId: job.id, kind: 'after-upload' }, context(store, { folderOf: () => away }), new AbortController().signal);
    const [pending] = await store.followUps(job.id);
    expect(pending).toMatchObject({ failures: 1, error: `delete pending: its folder ${inbox} is not there (unmounted?)` });
    expect(pending!.dueAt).toBeGreaterThan(Date.now() + 20_000);
  });

  it('is left alone while another live process runs it, and not run before it is due', async () => {
    const { dir, path, store, job } = await storedMix({ action: 'delete' });
    // This test's parent process stands for the other holder: alive, with a fresh claim.
    openDatabase(join(dir, 'state.db')).prepare('UPDATE follow_ups SET owner_pid = ?, lease_until = ?').run(process.ppid, Date.now() + 60_000);
    await runFollowUp({ jobId: job.id, kind: 'after-upload' }, context(store), new AbortController().signal);
    expect(existsSync(path)).toBe(true);

    openDatabase(join(dir, 'state.db')).prepare('UPDATE follow_ups SET owner_pid = NULL, lease_until = NULL, due_at = ?').run(Date.now() + 60_000);
    await runFollowUp({ jobId: job.id, kind: 'after-upload' }, context(store), new AbortController().signal);
    expect(existsSync(path)).toBe(true);
  });
});
