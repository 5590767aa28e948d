import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressLine } from '../../src/cli/progress.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import type { Job } from '../../src/store/job.js';
import { pcmWav } from '../helpers/audio.js';
import { CLI, createWorkspace, jobFor, runCliAsync, useDaemons, waitUntil, type Workspace, type WorkspaceOptions } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-upload-master-');
const { startSandbox, startDaemon } = useDaemons();

async function setUp(options: WorkspaceOptions = {}, masteringSeconds = 0.5): Promise<{ sandbox: Sandbox; workspace: Workspace }> {
  const sandbox = await startSandbox({ masteringSeconds });
  return { sandbox, workspace: createWorkspace(tempDir(), sandbox, options) };
}

const masteringFolder = (outputDir: string): WorkspaceOptions => ({
  folder: { mastering: { settings: { meq: 6, mca: 1 }, outputDir, pollIntervalSeconds: 0.2 } },
});

function startsFor(sandbox: Sandbox, sessionId: string) {
  return sandbox.requests().filter((r) => r.endpoint === 'mastering' && r.sessionId === sessionId && r.status === 200);
}

/** Every request of one kind for one Session-Id, whatever its answer. */
function requestsFor(sandbox: Sandbox, endpoint: string, sessionId: string) {
  return sandbox.requests().filter((r) => r.endpoint === endpoint && r.sessionId === sessionId);
}

/** What `upload --master` says when it leaves a job for the daemon or a second run. */
const leftOver = (masters: string) => `the daemon will finish it (masters to ${masters}), or run this command again (same Session-Id; nothing is sent or started twice)`;

/** The masters of one mix; returns the report's settings, to tell which plan was used. */
function expectMasters(dir: string): unknown {
  expect(readdirSync(dir).sort()).toEqual(['FinalMaster.wav', 'MasteringReport.json']);
  const master = readFileSync(join(dir, 'FinalMaster.wav'));
  expect(master.subarray(0, 4).toString('latin1')).toBe('RIFF');
  expect(master.subarray(8, 12).toString('latin1')).toBe('WAVE');
  expect(master.readUInt32LE(4)).toBe(master.length - 8);
  return (JSON.parse(readFileSync(join(dir, 'MasteringReport.json'), 'utf8')) as { settings: unknown }).settings;
}

describe('cryomix-watch upload FILE --master', () => {
  it('uploads, masters once and downloads a mix outside any folder, with plain progress lines; a second run starts nothing', async () => {
    const { sandbox, workspace } = await setUp();
    const path = join(workspace.dir, 'Outside Song.wav');
    writeFileSync(path, pcmWav(50_000));
    const out = join(workspace.dir, 'out');
    const result = await runCliAsync(workspace, ['upload', path, '--master', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // Named after the whole file name, extension included.
    const masters = join(out, 'Outside Song.wav');
    // Not a terminal: one plain line per stage, no redraw codes.
    expect(result.stdout).not.toMatch(/[\r\x1b]/);
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      'Outside Song.wav: uploading',
      expect.stringMatching(/^Outside Song\.wav: mastering \d+%$/),
      'Outside Song.wav: downloading',
      `Outside Song.wav: done, masters in ${masters}`,
    ]);
    // Default settings: none sent.
    expect(expectMasters(masters)).toEqual({});
    const job = (await jobFor(workspace, path))!;
    expect(job).toMatchObject({ state: 'done' });
    expect(startsFor(sandbox, job.sessionId)).toHaveLength(1);
    expect(sandbox.objects()).toHaveLength(1);

    const requestsBefore = sandbox.requests().length;
    const again = await runCliAsync(workspace, ['upload', path, '--master', '--out', out]);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(`Outside Song.wav: already mastered earlier (session ${job.sessionId}): masters in ${masters}; nothing started again\n`);
    expect(sandbox.requests()).toHaveLength(requestsBefore);
  });

  it('exits 1 with the API\'s reason when mastering fails', async () => {
    const { sandbox, workspace } = await setUp();
    sandbox.faults.add({ target: 'mastering', kind: 'job-failed' });
    const path = join(workspace.dir, 'unlucky.wav');
    writeFileSync(path, pcmWav(30_000));
    const out = join(workspace.dir, 'out');
    const result = await runCliAsync(workspace, ['upload', path, '--master', '--out', out]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^unlucky\.wav: failed: the Cryo-mix API reports the mastering job failed; run "cryomix-watch retry" to start it again$/m);
    expect(result.stderr).toMatch(/1 of 1 file\(s\) not mastered/);
    expect(await jobFor(workspace, path)).toMatchObject({ state: 'failed' });
    expect(existsSync(join(out, 'unlucky.wav'))).toBe(false);
  });

  it('uses the mastering block and outputDir of the folder holding the file; --out overrides the outputDir', async () => {
    const dir = tempDir();
    const folderMasters = join(dir, 'folder-masters');
    const { sandbox, workspace } = await setUp(masteringFolder(folderMasters));
    const inFolder = join(workspace.inbox, 'In Folder.wav');
    const redirected = join(workspace.inbox, 'Redirected.wav');
    writeFileSync(inFolder, pcmWav(30_000));
    writeFileSync(redirected, pcmWav(31_000));

    const first = await runCliAsync(workspace, ['upload', inFolder, '--master']);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`In Folder\\.wav: done, masters in ${join(folderMasters, 'In Folder.wav').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
    expect(expectMasters(join(folderMasters, 'In Folder.wav'))).toEqual({ meq: 6, mca: 1 });

    const out = join(dir, 'elsewhere');
    const second = await runCliAsync(workspace, ['upload', redirected, '--master', '--out', out]);
    expect(second.status).toBe(0);
    expect(expectMasters(join(out, 'Redirected.wav'))).toEqual({ meq: 6, mca: 1 });
    expect(existsSync(join(folderMasters, 'Redirected.wav'))).toBe(false);
    for (const path of [inFolder, redirected]) expect(startsFor(sandbox, (await jobFor(workspace, path))!.sessionId)).toHaveLength(1);
  });

  it('masters a file uploaded earlier without mastering, under the same Session-Id, sending it no second time', async () => {
    const { sandbox, workspace } = await setUp();
    const path = join(workspace.dir, 'plain.wav');
    writeFileSync(path, pcmWav(30_000));
    const plain = await runCliAsync(workspace, ['upload', path]);
    expect(plain.status).toBe(0);
    const uploaded = (await jobFor(workspace, path))!;
    expect(uploaded.state).toBe('done');
    expect(sandbox.requests().filter((r) => r.endpoint === 'mastering')).toHaveLength(0);

    const out = join(workspace.dir, 'out');
    const masters = join(out, 'plain.wav');
    const result = await runCliAsync(workspace, ['upload', path, '--master', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe(`plain.wav: done, masters in ${masters}`);
    expect(expectMasters(masters)).toEqual({});
    const mastered = (await jobFor(workspace, path))!;
    expect(mastered).toMatchObject({ state: 'done', sessionId: uploaded.sessionId, sha256: uploaded.sha256 });
    // The bytes the API already held were mastered: one upload, one start, all under the first Session-Id.
    expect(requestsFor(sandbox, 'multi-upload', uploaded.sessionId)).toHaveLength(1);
    expect(requestsFor(sandbox, 'put', uploaded.sessionId)).toHaveLength(1);
    expect(sandbox.requests().filter((r) => r.endpoint === 'put')).toHaveLength(1);
    expect(sandbox.objects()).toHaveLength(1);
    expect(requestsFor(sandbox, 'mastering', uploaded.sessionId)).toHaveLength(1);
    expect(startsFor(sandbox, uploaded.sessionId)).toHaveLength(1);
    expect(sandbox.requests().filter((r) => r.sessionId !== uploaded.sessionId)).toEqual([]);

    // Mastered now, so another run finds the masters and starts nothing.
    const requestsBefore = sandbox.requests().length;
    const again = await runCliAsync(workspace, ['upload', path, '--master', '--out', out]);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(`plain.wav: already mastered earlier (session ${uploaded.sessionId}): masters in ${masters}; nothing started again\n`);
    expect(sandbox.requests()).toHaveLength(requestsBefore);
  });

  it("masters a copy of a mix whose masters are still being made under the original's Session-Id, sending no bytes again, into a directory of its own", async () => {
    const masters = join(tempDir(), 'masters');
    const { sandbox, workspace } = await setUp(masteringFolder(masters), 3);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const original = join(workspace.inbox, 'Song.wav');
    writeFileSync(original, pcmWav(40_000));
    const originalJob = await waitUntil(async () => {
      const job = await jobFor(workspace, original);
      return job?.state === 'mastering' && startsFor(sandbox, job.sessionId).length === 1 && job;
    });
    const copy = join(workspace.inbox, 'Song copy.wav');
    copyFileSync(original, copy);
    const result = await runCliAsync(workspace, ['upload', copy, '--master']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`Song copy.wav: the same bytes as ${original}, not sent again; done, masters in ${join(masters, 'Song copy.wav')}\n`);
    const copyJob = (await jobFor(workspace, copy))!;
    expect(copyJob).toMatchObject({ state: 'done', duplicateOf: original });
    expect(expectMasters(join(masters, 'Song copy.wav'))).toEqual({ meq: 6, mca: 1 });

    // The original's own masters, by the daemon, in a directory of their own.
    await waitUntil(async () => (await jobFor(workspace, original))?.state === 'done', 30_000);
    expect(expectMasters(join(masters, 'Song.wav'))).toEqual({ meq: 6, mca: 1 });
    expect(readFileSync(join(masters, 'Song copy.wav', 'FinalMaster.wav'))).toEqual(readFileSync(join(masters, 'Song.wav', 'FinalMaster.wav')));

    // One upload; the copy's start named the original's job, was refused as started already, and that job was followed.
    expect(sandbox.objects()).toHaveLength(1);
    expect(sandbox.requests().filter((r) => r.endpoint === 'put')).toHaveLength(1);
    expect(requestsFor(sandbox, 'mastering', originalJob.sessionId).map((r) => r.status)).toEqual([200, 400]);
    expect(requestsFor(sandbox, 'multi-download', originalJob.sessionId).filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
    expect(sandbox.requests().filter((r) => r.sessionId === copyJob.sessionId)).toEqual([]);
    expect(daemon.logs.filter((r) => (r.file === original || r.file === copy) && r.level !== undefined && r.level >= 40)).toEqual([]);
  });

  it('refuses, before uploading, an --out where the daemon would find the masters and upload them again', async () => {
    const { sandbox, workspace } = await setUp();
    const path = join(workspace.dir, 'Outside Song.wav');
    writeFileSync(path, pcmWav(50_000));
    const result = await runCliAsync(workspace, ['upload', path, '--master', '--out', join(workspace.inbox, 'masters')]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(
      `Outside Song.wav: its masters would go to ${join(workspace.inbox, 'masters', 'Outside Song.wav')}, which the daemon watches (in ${workspace.inbox}) and would upload again: choose a folder outside it with --out`,
    );
    expect(await jobFor(workspace, path)).toBeUndefined();
    expect(sandbox.requests()).toEqual([]);
  });

  it('refuses --out without --master', async () => {
    const { workspace } = await setUp();
    const result = await runCliAsync(workspace, ['upload', join(workspace.dir, 'x.wav'), '--out', workspace.dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/--out .* needs --master/);
  });
});

describe('cryomix-watch upload FILE --master, interrupted', () => {
  it('leaves the mastering row on Ctrl-C, says who finishes it, and a second run, even with another --out, finishes it where it started without a second start', async () => {
    const dir = tempDir();
    const masters = join(dir, 'masters');
    const { sandbox, workspace } = await setUp(masteringFolder(masters), 3);
    const path = join(workspace.inbox, 'long master.wav');
    writeFileSync(path, pcmWav(30_000));
    const child = spawn(process.execPath, [CLI, 'upload', path, '--master', '--config', workspace.configFile], { env: workspace.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitUntil(() => sandbox.requests().some((r) => r.endpoint === 'percentage' && r.status === 200));
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stdout.split('\n')).toContain(`long master.wav: interrupted while mastering; ${leftOver(join(masters, 'long master.wav'))}`);
    const interrupted = (await jobFor(workspace, path))!;
    expect(interrupted.state).toBe('mastering');

    // The job is finished with the plan its mastering was started with, whatever --out says now.
    const other = join(dir, 'other');
    const resumed = await runCliAsync(workspace, ['upload', path, '--master', '--out', other]);
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toContain(`long master.wav: done, masters in ${join(masters, 'long master.wav')}\n`);
    expect(existsSync(join(other, 'long master.wav'))).toBe(false);
    expect(startsFor(sandbox, interrupted.sessionId)).toHaveLength(1);
    expect(sandbox.objects()).toHaveLength(1);
    expectMasters(join(masters, 'long master.wav'));
  });
});

describe('cryomix-watch upload FILE --master, interrupted beside the daemon', () => {
  it.each([
    { how: 'with --out', viaOut: true },
    { how: 'in the current directory', viaOut: false },
  ])('the daemon finishes the mastering of a mix outside its folders with the stored plan, masters $how', async ({ viaOut }) => {
    const { sandbox, workspace } = await setUp({}, 3);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.dir, 'beside the daemon.wav');
    writeFileSync(path, pcmWav(30_000));
    // The one-shot's directory, not the daemon's: the plan must hold it as an absolute path.
    const out = join(workspace.dir, 'out');
    const elsewhere = join(workspace.dir, 'elsewhere');
    mkdirSync(out);
    mkdirSync(elsewhere);
    const masters = join(out, 'beside the daemon.wav');
    const child = spawn(process.execPath, [CLI, 'upload', path, '--master', ...(viaOut ? ['--out', out] : []), '--config', workspace.configFile], {
      // With --out, the current directory is another one, where nothing may land.
      cwd: viaOut ? elsewhere : out,
      env: workspace.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Stopped once its mastering job is started: the default plan polls only every 5 s, so the masters are not in yet.
    await waitUntil(() => sandbox.requests().some((r) => r.endpoint === 'mastering' && r.status === 200));
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stdout.split('\n')).toContain(`beside the daemon.wav: interrupted while mastering; ${leftOver(masters)}`);
    const interrupted = (await jobFor(workspace, path))!;
    expect(interrupted.state).toBe('mastering');
    expect(existsSync(masters)).toBe(false);

    // The daemon, whose folders hold no such file, takes the row and finishes it with the plan stored on it.
    const done = await waitUntil(
      async () => {
        const job = await jobFor(workspace, path);
        return job?.state === 'done' && job;
      },
      30_000,
      async () => `the row is ${JSON.stringify(await jobFor(workspace, path))}`,
    );
    expect(done.sessionId).toBe(interrupted.sessionId);
    // Logged once `done` is on disk (group commit), a few ms after the DB shows it.
    await daemon.waitForLog((r) => r.file === path && r.masters === masters);
    // Default settings (none sent), as the one-shot's plan said.
    expect(expectMasters(masters)).toEqual({});
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(requestsFor(sandbox, 'mastering', interrupted.sessionId)).toHaveLength(1);
    expect(startsFor(sandbox, interrupted.sessionId)).toHaveLength(1);
    expect(sandbox.objects()).toHaveLength(1);
    expect(daemon.logs.filter((r) => r.file === path && r.level !== undefined && r.level >= 40)).toEqual([]);
  });
});

describe('the progress line', () => {
  const rows: Partial<Job>[] = [
    { state: 'queued', bytesSent: 0, size: 1000 },
    { state: 'uploading', bytesSent: 420, size: 1000 },
    { state: 'uploading', bytesSent: 421, size: 1000 },
    { state: 'mastering', masteringPercent: 0 },
    { state: 'mastering', masteringPercent: 63 },
    { state: 'downloading' },
  ];

  function render(isTTY: boolean): string {
    const out = Object.assign(new PassThrough(), { isTTY });
    let written = '';
    out.on('data', (data: Buffer) => (written += data.toString()));
    const line = progressLine('Song.wav', out);
    for (const row of rows) line.update(row as Job);
    line.note('storage answered 503; trying again in 2 s');
    line.finish('done, masters in /m/Song');
    return written;
  }

  it('is redrawn in place on a terminal', () => {
    const clear = '\r\x1b[2K';
    expect(render(true)).toBe(
      [
        `${clear}Song.wav  uploading 0%`,
        `${clear}Song.wav  uploading 42%`,
        `${clear}Song.wav  mastering 0%`,
        `${clear}Song.wav  mastering 63%`,
        `${clear}Song.wav  downloading`,
        `${clear}Song.wav: storage answered 503; trying again in 2 s\n`,
        `${clear}Song.wav  downloading`,
        `${clear}Song.wav  done, masters in /m/Song\n`,
      ].join(''),
    );
  });

  it('is one plain line per stage elsewhere', () => {
    expect(render(false)).toBe(
      [
        'Song.wav: uploading',
        'Song.wav: mastering 0%',
        'Song.wav: downloading',
        'Song.wav: storage answered 503; trying again in 2 s',
        'Song.wav: done, masters in /m/Song',
        '',
      ].join('\n'),
    );
  });
});

describe('cryomix-watch upload FILE (no --master) in a mastering folder', () => {
  it('counts the upload as done and leaves the mastering to the daemon', async () => {
    const { workspace } = await setUp(masteringFolder(join(tempDir(), 'masters')));
    const path = join(workspace.inbox, 'Hand In.wav');
    writeFileSync(path, pcmWav(40_000));
    const result = await runCliAsync(workspace, ['upload', path]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/Hand In\.wav: uploaded, session [0-9a-f-]{36}; its folder asks for masters, which the daemon fetches/);
    expect((await jobFor(workspace, path))?.state).toBe('mastering');
  });
});

