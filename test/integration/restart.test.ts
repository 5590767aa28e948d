import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, runCli, useWorkspace, waitUntil, waitForState } from '../helpers/daemon.js';

const { sandbox, workspace, tempDir, startDaemon } = useWorkspace();
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('stopping and starting', () => {
  it('exits 0 on SIGTERM, and a restart re-uploads nothing while finding files added meanwhile', async () => {
    const first = startDaemon(workspace);
    await first.ready();
    const early = join(workspace.inbox, 'early.wav');
    writeFileSync(early, pcmWav(100_000));
    await waitUntil(async () => (await jobFor(workspace, early))?.state === 'done');
    expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const late = join(workspace.inbox, 'while-stopped.wav');
    writeFileSync(late, pcmWav(120_000));
    const second = startDaemon(workspace);
    await second.ready();
    await waitUntil(async () => (await jobFor(workspace, late))?.state === 'done');
    expect(sandbox.objects().map((o) => o.objectName).sort()).toEqual(['early.wav', 'while-stopped.wav']);
    expect(sandbox.requests().filter((r) => r.endpoint === 'multi-upload')).toHaveLength(2);
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('marks files deleted while the daemon was down as removed, not failed', async () => {
    sandbox.faults.setUnauthorized(true); // keeps the file queued: nothing uploads
    const first = startDaemon(workspace);
    await first.ready();
    const path = join(workspace.inbox, 'gone.wav');
    writeFileSync(path, pcmWav(50_000));
    await waitUntil(async () => (await jobFor(workspace, path))?.state === 'queued');
    await first.stop('SIGTERM');
    rmSync(path);
    sandbox.faults.setUnauthorized(false);
    const second = startDaemon(workspace);
    await second.ready();
    expect(await waitForState(workspace, path, 'removed')).toMatchObject({ error: 'the file disappeared before it was uploaded' });
  });

  it('uploads a file that was moved out of the folder and back in, unchanged', async () => {
    sandbox.faults.setUnauthorized(true); // holds the file in the queue
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'wanderer.wav');
    const outside = join(workspace.dir, 'wanderer.wav');
    writeFileSync(path, pcmWav(30_000));
    await waitUntil(async () => (await jobFor(workspace, path))?.state === 'queued');
    renameSync(path, outside);
    await waitUntil(async () => (await jobFor(workspace, path))?.state === 'removed');
    renameSync(outside, path); // rename keeps size and mtime: the same version comes back
    sandbox.faults.setUnauthorized(false);
    await waitUntil(async () => (await jobFor(workspace, path))?.state === 'done');
    expect(sandbox.objects().map((o) => o.objectName)).toEqual(['wanderer.wav']);
  });

  it('stops with exit 1 and a fatal log when the state database fails, instead of carrying on', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    // Another process holds the write lock past the 5 s busy timeout, as a wedged or broken disk would.
    const blocker = new Database(workspace.database);
    blocker.exec('BEGIN EXCLUSIVE');
    try {
      writeFileSync(join(workspace.inbox, 'during-outage.wav'), pcmWav(10_000));
      expect(await daemon.exited).toEqual({ code: 1, signal: null });
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
    expect(daemon.logs.find((r) => r.level === 60)?.msg).toMatch(/stopping: the state database failed/);
  });

  it('after kill -9 during an upload, resumes with the same Session-Id and stores the right bytes once', async () => {
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 64 * 1024 });
    const first = startDaemon(workspace);
    await first.ready();
    const path = join(workspace.inbox, 'big mix.wav');
    const bytes = pcmWav(2_000_000);
    writeFileSync(path, bytes);
    const uploading = await waitUntil(async () => {
      const job = await jobFor(workspace, path);
      return job?.state === 'uploading' && job.bytesSent > 0 && job;
    });
    await first.stop('SIGKILL');

    const second = startDaemon(workspace);
    await second.ready();
    const done = await waitForState(workspace, path, 'done', 15_000, async () => second.output + JSON.stringify(await listJobs(workspace)));
    expect(done.sessionId).toBe(uploading.sessionId);
    expect(done.sha256).toBe(sha256(bytes));
    const stored = sandbox.objects().filter((o) => o.sessionId === done.sessionId);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.sha256).toBe(sha256(readFileSync(path)));
    const sessionIds = new Set(sandbox.requests().filter((r) => r.endpoint === 'multi-upload').map((r) => r.sessionId));
    expect([...sessionIds]).toEqual([uploading.sessionId]);
  });

  it('on SIGTERM during an upload, parks it as retrying within the grace period and finishes it after restart', async () => {
    // The stall must outlast the 2 s grace period so that shutdown, not the stall watchdog, ends the attempt.
    const patient = createWorkspace(tempDir(), sandbox, { uploads: { stallTimeoutSeconds: 30 } });
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1 });
    const first = startDaemon(patient);
    await first.ready();
    const path = join(patient.inbox, 'interrupted.wav');
    writeFileSync(path, pcmWav(500_000));
    await waitUntil(async () => (await jobFor(patient, path))?.state === 'uploading');
    const started = Date.now();
    expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await jobFor(patient, path)).toMatchObject({ state: 'retrying', error: 'interrupted by shutdown; resumes on the next start' });

    const second = startDaemon(patient);
    await second.ready();
    await waitUntil(async () => (await jobFor(patient, path))?.state === 'done');
    expect(await listJobs(patient)).toHaveLength(1);
  });

  it('shows state to status and list while the daemon runs', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    writeFileSync(join(workspace.inbox, 'a.wav'), pcmWav(10_000));
    await waitUntil(async () => (await listJobs(workspace))[0]?.state === 'done');
    const status = runCli(workspace, ['status', '--json']);
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ counts: { done: 1, failed: 0 }, paused: null });
    const human = runCli(workspace, ['list']);
    expect(human.stdout).toMatch(/^STATE\s+FILE\s+SIZE\s+TRIES\s+SESSION-ID/);
    expect(human.stdout).toContain('a.wav');
  });
});
