import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, runCli, runCliAsync, useDaemons, waitUntil, type DaemonProcess, type Workspace, waitForState } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();
const { startSandbox, startDaemon } = useDaemons();

let sandbox: Sandbox;
let daemon: DaemonProcess;

async function start(options: Parameters<typeof createWorkspace>[2] = {}, sandboxKey?: string): Promise<Workspace> {
  sandbox = await startSandbox(sandboxKey ? { apiKey: sandboxKey } : {});
  const workspace = createWorkspace(tempDir(), sandbox, options);
  daemon = startDaemon(workspace);
  await daemon.ready();
  return workspace;
}

const requestsFor = (endpoint: string) => sandbox.requests().filter((r) => r.endpoint === endpoint);

describe('answers from the API and storage', () => {
  it('fails a file on 400 with the API message, without blind retries, and `retry` re-arms it', async () => {
    const workspace = await start();
    sandbox.faults.add({ target: 'multi-upload', kind: 'status', status: 400 });
    const path = join(workspace.inbox, 'refused.wav');
    writeFileSync(path, pcmWav(20_000));
    const failed = await waitForState(workspace, path, 'failed');
    expect(failed.error).toMatch(/refused the request \(400\)/);
    expect(requestsFor('multi-upload')).toHaveLength(1);

    const retry = runCli(workspace, ['retry', '--failed']);
    expect(retry).toMatchObject({ status: 0 });
    expect(retry.stdout).toContain(`re-armed ${path}`);
    const done = await waitForState(workspace, path, 'done');
    expect(done.sessionId).toBe(failed.sessionId);
    expect(done.attempts).toBe(2);
  });

  it('retries 503 after the Retry-After delay and counts the attempts', async () => {
    const workspace = await start();
    sandbox.faults.add({ target: 'put', kind: 'status', status: 503, retryAfterSeconds: 1 });
    const path = join(workspace.inbox, 'busy.wav');
    writeFileSync(path, pcmWav(20_000));
    // From the transition log, not by polling: the retrying state lasts only a second.
    const retrying = await daemon.waitForLog((r) => r.event === 'transition' && r.file === path && r.to === 'retrying');
    // Retry-After (1 s), not the 0.2 s backoff; the due time is computed a moment before the line is logged.
    expect(Date.parse(retrying.nextAttemptAt as string) - (retrying.time as number)).toBeGreaterThanOrEqual(950);
    const done = await waitForState(workspace, path, 'done');
    expect(done.attempts).toBe(2);
    expect(sandbox.objects()).toHaveLength(1);
  });

  it('pauses all uploads on 401, shows it in status, keeps detecting, and resumes when the key works', async () => {
    const workspace = await start();
    sandbox.faults.setUnauthorized(true);
    const first = join(workspace.inbox, 'first.wav');
    writeFileSync(first, pcmWav(20_000));
    await waitUntil(async () => JSON.parse((await runCliAsync(workspace, ['status', '--json'])).stdout).paused);
    const status = runCli(workspace, ['status']);
    expect(status.stdout).toMatch(/PAUSED since .*rejected the API key/);

    const second = join(workspace.inbox, 'second.wav');
    writeFileSync(second, pcmWav(20_000));
    await waitUntil(async () => (await jobFor(workspace, second))?.state === 'queued');
    expect((await jobFor(workspace, first))?.state).toBe('queued');

    sandbox.faults.setUnauthorized(false);
    await waitUntil(async () => (await jobFor(workspace, first))?.state === 'done' && (await jobFor(workspace, second))?.state === 'done');
    expect(JSON.parse(runCli(workspace, ['status', '--json']).stdout).paused).toBeNull();
    expect(sandbox.objects()).toHaveLength(2);
  });

  it('asks for a fresh URL with the same Session-Id when storage says ExpiredToken, without counting a failure', async () => {
    const workspace = await start();
    sandbox.faults.add({ target: 'multi-upload', kind: 'expired-url' });
    const path = join(workspace.inbox, 'late.wav');
    writeFileSync(path, pcmWav(20_000));
    const done = await waitForState(workspace, path, 'done');
    expect(done.attempts).toBe(1);
    const urlRequests = requestsFor('multi-upload');
    expect(urlRequests).toHaveLength(2);
    expect(new Set(urlRequests.map((r) => r.sessionId))).toEqual(new Set([done.sessionId]));
    expect(requestsFor('put').map((r) => r.status)).toEqual([400, 200]);
  });

  it('uploads again when storage reports another MD5 than the bytes sent', async () => {
    const workspace = await start();
    sandbox.faults.add({ target: 'put', kind: 'bad-md5' });
    const path = join(workspace.inbox, 'verify.wav');
    writeFileSync(path, pcmWav(20_000));
    const done = await waitForState(workspace, path, 'done');
    expect(done.attempts).toBe(2);
    expect(requestsFor('put')).toHaveLength(2);
  });

  it('never writes the API key or a URL signature to logs, CLI output or the database', async () => {
    const key = 'ck_live_CANARY_7f3a9e1b2c4d';
    const workspace = await start({}, key);
    sandbox.faults.add({ target: 'multi-upload', kind: 'expired-url' });
    sandbox.faults.add({ target: 'put', kind: 'reset', afterBytes: 1000 });
    sandbox.faults.add({ target: 'put', kind: 'status', status: 403 });
    const paths = ['a.wav', 'b.wav'].map((name) => join(workspace.inbox, name));
    for (const path of paths) writeFileSync(path, pcmWav(30_000));
    await waitUntil(async () => {
      const rows = await listJobs(workspace);
      return paths.every((path) => ['done', 'failed'].includes(rows.find((row) => row.path === path)?.state ?? ''));
    });
    await daemon.stop('SIGTERM');
    const outputs = [
      daemon.output,
      runCli(workspace, ['list', '--json']).stdout,
      runCli(workspace, ['list']).stdout,
      runCli(workspace, ['status']).stdout,
      (await runCliAsync(workspace, ['check'])).stdout,
    ].join('\n');
    expect(outputs).toContain('a.wav');
    for (const secret of [key, 'X-Goog-Signature', 'X-Goog-Credential']) expect(outputs).not.toContain(secret);
    // After a clean stop the WAL is checkpointed into the main file; read whatever exists.
    const database = [workspace.database, `${workspace.database}-wal`]
      .filter((file) => existsSync(file))
      .map((file) => readFileSync(file).toString('latin1'))
      .join('');
    expect(database).not.toContain(key);
    expect(database).not.toContain('X-Goog-Signature');
  });
});
