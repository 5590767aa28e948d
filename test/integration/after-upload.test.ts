import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, useDaemons, waitUntil, waitForState } from '../helpers/daemon.js';
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
    expect(listJobs(workspace).map((j) => j.state)).toEqual(['done']);
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
    expect(jobFor(workspace, path)).toMatchObject({ state: 'done', sha256: sha256(bytes) });
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
});
