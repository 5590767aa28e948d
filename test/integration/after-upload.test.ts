import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, runCli, runCliAsync, useDaemons, waitUntil, waitForState } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();
const { startSandbox, startDaemon } = useDaemons();
/** The service user: nobody, whose group stands for the studio's share group. */
const SERVICE = 65534;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('after the upload', () => {
  it('moves the file under moveTo keeping its sub-folder, never overwriting, and does not upload it again', async () => {
    const sandbox = await startSandbox();
    const dir = tempDir();
    const workspace = createWorkspace(dir, sandbox, { folder: { afterUpload: 'move', moveTo: join(dir, 'inbox', 'uploaded') } });
    mkdirSync(join(workspace.inbox, 'session 1'));
    mkdirSync(join(workspace.inbox, 'uploaded', 'session 1'), { recursive: true });
    writeFileSync(join(workspace.inbox, 'uploaded', 'session 1', 'mix.wav'), 'an older file the user keeps');
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const bytes = pcmWav(40_000);
    writeFileSync(join(workspace.inbox, 'session 1', 'mix.wav'), bytes);

    const moved = join(workspace.inbox, 'uploaded', 'session 1', 'mix (2).wav');
    await waitUntil(() => existsSync(moved));
    expect(readFileSync(moved)).toEqual(bytes);
    expect(readFileSync(join(workspace.inbox, 'uploaded', 'session 1', 'mix.wav'), 'utf8')).toBe('an older file the user keeps');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await listJobs(workspace)).map((j) => j.state)).toEqual(['done']);
    expect(sandbox.objects()).toHaveLength(1);
  });

  it('deletes the file when asked, only after it is stored', async () => {
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox, { folder: { afterUpload: 'delete' } });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'temp.wav');
    const bytes = pcmWav(40_000);
    writeFileSync(path, bytes);
    await waitUntil(() => !existsSync(path));
    expect(await jobFor(workspace, path)).toMatchObject({ state: 'done', sha256: sha256(bytes) });
    expect(sandbox.objects()[0]!.sha256).toBe(sha256(bytes));
  });
});

describe('what the daemon puts in the studio\'s folders', () => {
  it('gives the moveTo folder its parent\'s mode and group, and the moved mix stays readable by the studio', async () => {
    const sandbox = await startSandbox();
    const dir = tempDir();
    const workspace = createWorkspace(dir, sandbox, { folder: { afterUpload: 'move', moveTo: join(dir, 'inbox', 'uploaded') } });
    // The service user (nobody) shares the studio's group: the engineer's (root's) folder is group-writable and setgid.
    execFileSync('chown', ['-R', `${SERVICE}:${SERVICE}`, dir]);
    chmodSync(dir, 0o755);
    chownSync(workspace.inbox, 0, SERVICE);
    chmodSync(workspace.inbox, 0o2775);
    // A strict umask (as a hand-run daemon may have): what it keeps back, the folder gets from its parent.
    const daemon = startDaemon(workspace, [], { uid: SERVICE, umask: '077' });
    await daemon.ready();
    const bytes = pcmWav(40_000);
    writeFileSync(join(workspace.inbox, 'mix.wav'), bytes, { mode: 0o644 });

    const moved = join(workspace.inbox, 'uploaded', 'mix.wav');
    await waitUntil(() => existsSync(moved) && !existsSync(join(workspace.inbox, 'mix.wav')));
    const { mode, gid } = statSync(join(workspace.inbox, 'uploaded'));
    expect({ mode: mode & 0o7777, gid }).toEqual({ mode: 0o2775, gid: SERVICE });
    // Another user, in neither group: what the share lets everyone read, the moved mix lets them read too.
    const otherUser = spawnSync('cat', [moved], { uid: 4321, gid: 4321 });
    expect(otherUser.status, otherUser.stderr.toString()).toBe(0);
    expect(otherUser.stdout.equals(bytes)).toBe(true);
  });
});

describe('a file that changes during its upload', () => {
  it('drops the attempt and uploads the final bytes under a new Session-Id', async () => {
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox, { uploads: { stallTimeoutSeconds: 30 } });
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1 });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'still editing.wav');
    writeFileSync(path, pcmWav(200_000));
    const first = await waitForState(workspace, path, 'uploading');
    // The stalled PUT is on the wire (answered with nothing yet) before the file changes.
    await waitUntil(() => sandbox.requests().some((r) => r.endpoint === 'put' && r.sessionId === first.sessionId));
    // A re-export that writes a whole new file in place.
    const final = pcmWav(300_000);
    writeFileSync(path, final);
    const done = await waitForState(workspace, path, 'done', 15_000, () => JSON.stringify(sandbox.requests()));
    expect(sandbox.requests().filter((r) => r.endpoint === 'put').map((r) => r.sessionId)).toEqual([first.sessionId, done.sessionId]);
    expect(done.sessionId).not.toBe(first.sessionId);
    expect(done.sha256).toBe(sha256(final));
    expect(sandbox.objects().map((o) => o.sha256)).toEqual([sha256(final)]);
  });

  it('keeps a move that fails (an immutable target) pending with its reason in list, status and /metrics, and moves the file once it can, across a kill -9', async () => {
    const sandbox = await startSandbox();
    const dir = tempDir();
    const moveTo = join(dir, 'uploaded');
    const workspace = createWorkspace(dir, sandbox, { folder: { afterUpload: 'move', moveTo }, http: { listen: '127.0.0.1:0' } });
    mkdirSync(moveTo);
    // chattr +i: not even root may add a name to it, like a read-only or full target disk.
    execFileSync('chattr', ['+i', moveTo]);
    try {
      const first = startDaemon(workspace);
      const url = (await first.waitForLog((r) => typeof r.url === 'string')).url as string;
      const mix = join(workspace.inbox, 'Final Mix.wav');
      writeFileSync(mix, pcmWav(40_000));
      await waitForState(workspace, mix, 'done', 20_000, () => first.output.slice(-2000));
      const pending = await waitUntil(async () => (await jobFor(workspace, mix))?.followUps.find((f) => f.kind === 'after-upload' && f.error !== null), 20_000);
      expect(pending.error).toMatch(/^move pending: EPERM: operation not permitted/);
      expect(runCli(workspace, ['list']).stdout).toMatch(/done\s.*move pending: EPERM.*, next try in \d+ s/);
      expect(runCli(workspace, ['status']).stdout).toMatch(/Uploaded, but not yet finished[^\n]*\n\s+.*Final Mix\.wav: move pending: EPERM/);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^cryomix_watch_follow_ups_pending\{kind="after-upload",failing="true"\} 1$/m);
      // The status page lists the latest 50 files; a stuck one stays in view after 50 newer ones.
      const newer = Array.from({ length: 50 }, (_, i) => join(workspace.inbox, `newer ${i}.wav`));
      newer.forEach((path, i) => writeFileSync(path, pcmWav(20_000 + i)));
      await waitUntil(async () => (await listJobs(workspace)).filter((job) => job.state === 'done').length === 51, 60_000, () => first.output.slice(-2000));
      const page = await (await fetch(`${url}/`)).text();
      expect(page).toContain('Final Mix.wav');
      expect(page).toMatch(/move pending: EPERM[^<]*, next try in \d+ s/);
      expect(existsSync(mix)).toBe(true);
      // Tried again and again, and still pending after a crash.
      await first.waitForLog((r) => String(r.msg).includes('move pending') && (r.failures as number) >= 2);
      await first.stop('SIGKILL');

      execFileSync('chattr', ['-i', moveTo]);
      const second = startDaemon(workspace);
      await second.ready();
      await waitUntil(() => existsSync(join(moveTo, 'Final Mix.wav')) && !existsSync(mix), 20_000, () => second.output.slice(-2000));
      expect((await jobFor(workspace, mix))?.followUps).toEqual([]);
      expect(sandbox.objects()).toHaveLength(51);
    } finally {
      spawnSync('chattr', ['-i', moveTo]);
    }
  });

  it('moves a stored file while uploads are paused by a refused key: the move needs no API', async () => {
    const sandbox = await startSandbox();
    const dir = tempDir();
    const moveTo = join(dir, 'uploaded');
    const workspace = createWorkspace(dir, sandbox, { folder: { afterUpload: 'move', moveTo } });
    mkdirSync(moveTo);
    execFileSync('chattr', ['+i', moveTo]);
    try {
      const daemon = startDaemon(workspace);
      await daemon.ready();
      const stored = join(workspace.inbox, 'stored.wav');
      writeFileSync(stored, pcmWav(40_000));
      await waitUntil(async () => (await jobFor(workspace, stored))?.followUps.some((f) => f.error !== null), 20_000, () => daemon.output.slice(-2000));
      sandbox.faults.setUnauthorized(true);
      writeFileSync(join(workspace.inbox, 'next.wav'), pcmWav(30_000));
      await waitUntil(async () => JSON.parse((await runCliAsync(workspace, ['status', '--json'])).stdout).paused, 20_000);
      execFileSync('chattr', ['-i', moveTo]);
      await waitUntil(() => existsSync(join(moveTo, 'stored.wav')), 20_000, () => daemon.output.slice(-2000));
      expect(JSON.parse(runCli(workspace, ['status', '--json']).stdout).paused).not.toBeNull();
    } finally {
      spawnSync('chattr', ['-i', moveTo]);
    }
  });
});
