import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { renderResult } from '../../src/sandbox/results.js';
import type { Session } from '../../src/sandbox/state.js';
import { mp3File, pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, runCli, runCliAsync, useDaemons, waitForState, waitUntil, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-mastering-');
const { startSandbox, startDaemon } = useDaemons();

let sandbox: Sandbox;

async function masteringWorkspace(masteringSeconds = 0.6, onDone?: string[]): Promise<{ workspace: Workspace; masters: string }> {
  sandbox = await startSandbox({ masteringSeconds });
  const dir = tempDir();
  const masters = join(dir, 'masters');
  const workspace = createWorkspace(dir, sandbox, {
    folder: {
      mastering: { settings: { meq: 6, mca: 1 }, outputDir: masters, pollIntervalSeconds: 0.2, files: ['FinalMaster.wav', 'MasteringReport.json'], ...(onDone ? { onDone } : {}) },
    },
  });
  return { workspace, masters };
}

const startsFor = (sessionId: string) => sandbox.requests().filter((r) => r.endpoint === 'mastering' && r.sessionId === sessionId && r.status === 200);

function expectMasters(masters: string, mix: string): void {
  const dir = join(masters, mix);
  expect(readdirSync(dir).sort()).toEqual(['FinalMaster.wav', 'MasteringReport.json']);
  expect(readFileSync(join(dir, 'FinalMaster.wav')).subarray(0, 4).toString('latin1')).toBe('RIFF');
  expect(JSON.parse(readFileSync(join(dir, 'MasteringReport.json'), 'utf8'))).toBeTypeOf('object');
}

describe('mastering after upload', () => {
  it('masters WAV and MP3 mixes once each and brings the chosen results back', async () => {
    const { workspace, masters } = await masteringWorkspace();
    const daemon = startDaemon(workspace);
    await daemon.ready();
    // One name, two formats: each gets a masters folder of its own.
    const wav = join(workspace.inbox, 'Song.wav');
    const mp3 = join(workspace.inbox, 'Song.mp3');
    writeFileSync(wav, pcmWav(50_000));
    writeFileSync(mp3, mp3File(40_000));
    const doneWav = await waitForState(workspace, wav, 'done', 20_000, () => daemon.output.slice(-2000));
    const doneMp3 = await waitForState(workspace, mp3, 'done', 20_000);
    expectMasters(masters, 'Song.wav');
    expectMasters(masters, 'Song.mp3');
    expect(startsFor(doneWav.sessionId)).toHaveLength(1);
    expect(startsFor(doneMp3.sessionId)).toHaveLength(1);
    // The masters folder is not watched: nothing but the two mixes was uploaded.
    expect(sandbox.objects().map((o) => o.objectName).sort()).toEqual(['Song.mp3', 'Song.wav']);
  });

  it.each([
    ['right after the mastering call', (r: { msg?: string }) => String(r.msg).includes('mastering started')],
    ['mid-poll', (r: { msg?: string; to?: unknown }) => r.to === 'mastering'],
  ])('starts mastering exactly once after a kill -9 %s, and finishes after restart', async (_when, killWhen) => {
    const { workspace, masters } = await masteringWorkspace(1.5);
    const first = startDaemon(workspace);
    await first.ready();
    const path = join(workspace.inbox, 'crash test.wav');
    writeFileSync(path, pcmWav(30_000));
    await first.waitForLog(killWhen);
    await first.stop('SIGKILL');
    const second = startDaemon(workspace);
    await second.ready();
    const done = await waitForState(workspace, path, 'done', 20_000, () => second.output.slice(-2000));
    expect(startsFor(done.sessionId)).toHaveLength(1);
    expectMasters(masters, 'crash test.wav');
  });

  it('resumes a download interrupted by kill -9 mid-body, leaving no .partial and complete results', async () => {
    const { workspace, masters } = await masteringWorkspace(0.3);
    sandbox.faults.add({ target: 'get', kind: 'stall', afterBytes: 4096 });
    const first = startDaemon(workspace);
    await first.ready();
    const path = join(workspace.inbox, 'download crash.wav');
    writeFileSync(path, pcmWav(30_000));
    const dir = join(masters, 'download crash.wav');
    // Killed while the first result is half written.
    await waitUntil(() => existsSync(dir) && readdirSync(dir).some((name) => name.endsWith('.partial')), 20_000, () => first.output.slice(-2000));
    await first.stop('SIGKILL');
    const second = startDaemon(workspace);
    await second.ready();
    const done = await waitForState(workspace, path, 'done', 20_000, () => second.output.slice(-2000));
    expect(startsFor(done.sessionId)).toHaveLength(1);
    expectMasters(masters, 'download crash.wav');
  });

  it('fails the file when the API reports mastering failed, and `retry` runs it again on the same Session-Id', async () => {
    const { workspace, masters } = await masteringWorkspace(0.3);
    sandbox.faults.add({ target: 'mastering', kind: 'job-failed' });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'unlucky.wav');
    writeFileSync(path, pcmWav(30_000));
    const failed = await waitForState(workspace, path, 'failed', 20_000, () => daemon.output.slice(-2000));
    expect(failed.error).toMatch(/mastering job failed/);
    expect(runCli(workspace, ['retry', path]).status).toBe(0);
    const done = await waitForState(workspace, path, 'done', 20_000);
    expect(done.sessionId).toBe(failed.sessionId);
    expect(startsFor(done.sessionId)).toHaveLength(2);
    expect(sandbox.objects()).toHaveLength(1);
    expectMasters(masters, 'unlucky.wav');
  });

  it('asks for fresh download URLs when storage refuses one', async () => {
    const { workspace, masters } = await masteringWorkspace(0.3);
    sandbox.faults.add({ target: 'get', kind: 'status', status: 403 });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'refused.wav');
    writeFileSync(path, pcmWav(30_000));
    const done = await waitForState(workspace, path, 'done', 20_000, () => daemon.output.slice(-2000));
    expect(sandbox.requests().filter((r) => r.endpoint === 'multi-download' && r.sessionId === done.sessionId)).toHaveLength(2);
    expectMasters(masters, 'refused.wav');
  });

  it('asks for fresh download URLs when the ones it got have expired', async () => {
    const { workspace, masters } = await masteringWorkspace(0.3);
    sandbox.faults.add({ target: 'multi-download', kind: 'expired-url' });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'late pickup.wav');
    writeFileSync(path, pcmWav(30_000));
    const done = await waitForState(workspace, path, 'done', 20_000, () => daemon.output.slice(-2000));
    expect(sandbox.requests().filter((r) => r.endpoint === 'multi-download' && r.sessionId === done.sessionId)).toHaveLength(2);
    expect(sandbox.requests().some((r) => r.endpoint === 'get' && r.status === 400)).toBe(true);
    expectMasters(masters, 'late pickup.wav');
  });

  it('never overwrites a file already in the output folder: the master becomes "FinalMaster (2).wav"', async () => {
    const { workspace, masters } = await masteringWorkspace(0.3);
    mkdirSync(join(masters, 'taken.wav'), { recursive: true });
    writeFileSync(join(masters, 'taken.wav', 'FinalMaster.wav'), 'the engineer kept an older master here');
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'taken.wav');
    writeFileSync(path, pcmWav(30_000));
    await waitForState(workspace, path, 'done', 20_000, () => daemon.output.slice(-2000));
    expect(readFileSync(join(masters, 'taken.wav', 'FinalMaster.wav'), 'utf8')).toBe('the engineer kept an older master here');
    expect(existsSync(join(masters, 'taken.wav', 'FinalMaster (2).wav'))).toBe(true);
  });

  it('takes a master placed before a kill -9 but never recorded as it is: no "FinalMaster (2).wav"', async () => {
    const { workspace, masters } = await masteringWorkspace(2);
    const first = startDaemon(workspace);
    await first.ready();
    const path = join(workspace.inbox, 'placed.wav');
    writeFileSync(path, pcmWav(30_000));
    await first.waitForLog((r) => String(r.msg).includes('mastering started'));
    await first.stop('SIGKILL');
    // What a kill between placing the master and recording it leaves: the whole file at its name, no record.
    const dir = join(masters, 'placed.wav');
    mkdirSync(dir, { recursive: true });
    // The sandbox's FinalMaster.wav is the same tone for every mix.
    const master = renderResult('FinalMaster.wav', {} as Session).body;
    writeFileSync(join(dir, 'FinalMaster.wav'), master);
    const second = startDaemon(workspace);
    await second.ready();
    await waitForState(workspace, path, 'done', 20_000, () => second.output.slice(-2000));
    expectMasters(masters, 'placed.wav');
    expect(readFileSync(join(dir, 'FinalMaster.wav'))).toEqual(master);
  });

  it('gives a duplicate in a mastering folder masters of its own, from the original upload, without sending it again', async () => {
    const { workspace, masters } = await masteringWorkspace(0.3);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const bytes = pcmWav(30_000);
    const original = join(workspace.inbox, 'Take 1.wav');
    writeFileSync(original, bytes);
    const first = await waitForState(workspace, original, 'done', 20_000, () => daemon.output.slice(-2000));
    const copy = join(workspace.inbox, 'Take 1 (client copy).wav');
    writeFileSync(copy, bytes);
    const second = await waitForState(workspace, copy, 'done', 20_000, () => daemon.output.slice(-2000));
    expect(second.duplicateOf).toBe(original);
    expectMasters(masters, 'Take 1.wav');
    expectMasters(masters, 'Take 1 (client copy).wav');
    expect(sandbox.objects()).toHaveLength(1);
    // Mastered once, under the original's Session-Id; the copy's own Session-Id never reached the API.
    expect(startsFor(first.sessionId)).toHaveLength(1);
    expect(sandbox.requests().filter((r) => r.sessionId === second.sessionId)).toEqual([]);
  });

  it('runs the onDone hook again after a kill -9 while it ran (at least once), and not again once it has run', async () => {
    const runs = join(tempDir(), 'hook-runs.txt');
    // The first run hangs until killed with the daemon; later runs return at once.
    const script = `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(runs)}, process.env.CRYOMIX_SESSION_ID + '\\n'); if (fs.readFileSync(${JSON.stringify(runs)}, 'utf8').split('\\n').length === 2) setTimeout(() => {}, 60_000);`;
    const { workspace } = await masteringWorkspace(0.3, [process.execPath, '-e', script]);
    const first = startDaemon(workspace);
    await first.ready();
    const path = join(workspace.inbox, 'announced.wav');
    writeFileSync(path, pcmWav(30_000));
    const done = await waitForState(workspace, path, 'done', 20_000, () => first.output.slice(-2000));
    await waitUntil(() => existsSync(runs));
    await first.stop('SIGKILL');
    expect((await jobFor(workspace, path))?.followUps.map((f) => f.kind)).toEqual(['on-done']);

    const second = startDaemon(workspace);
    await second.ready();
    await second.waitForLog((r) => String(r.msg).includes('the onDone hook ran'));
    await waitUntil(async () => (await jobFor(workspace, path))?.followUps.length === 0);
    await second.stop();
    const third = startDaemon(workspace);
    await third.ready();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await third.stop();
    expect(readFileSync(runs, 'utf8')).toBe(`${done.sessionId}\n${done.sessionId}\n`);
  });

  it('shows mastering progress in list and status while the API works', async () => {
    const { workspace } = await masteringWorkspace(3);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'progress.wav');
    writeFileSync(path, pcmWav(30_000));
    await waitUntil(async () => /mastering \d+%/.test((await runCliAsync(workspace, ['list'])).stdout), 20_000);
    expect(runCli(workspace, ['status']).stdout).toMatch(/Mastering now: progress\.wav \d+%/);
  });

  it('runs the onDone hook without a shell, with the masters folder as its last argument', async () => {
    const script = "require('fs').writeFileSync(require('path').join(process.argv[1], 'hook-ran.txt'), process.argv[1] + ' ' + process.env.CRYOMIX_SESSION_ID)";
    const { workspace, masters } = await masteringWorkspace(0.3, [process.execPath, '-e', script]);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'hooked; rm -rf ~.wav');
    writeFileSync(path, pcmWav(30_000));
    const done = await waitForState(workspace, path, 'done', 20_000);
    // The hook has finished writing its marker only once the daemon has seen it exit.
    await daemon.waitForLog((r) => String(r.msg).includes('the onDone hook ran') && r.exitCode === 0);
    const marker = join(masters, 'hooked; rm -rf ~.wav', 'hook-ran.txt');
    expect(readFileSync(marker, 'utf8')).toBe(`${join(masters, 'hooked; rm -rf ~.wav')} ${done.sessionId}`);
  });

  it('logs a failing hook with its exit status and output, and keeps the job done', async () => {
    const { workspace } = await masteringWorkspace(0.3, [process.execPath, '-e', "console.log('no space on the backup disk'); process.exit(3)"]);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'hook fails.wav');
    writeFileSync(path, pcmWav(30_000));
    await waitForState(workspace, path, 'done', 20_000);
    const warning = await daemon.waitForLog((r) => String(r.msg).includes('the onDone hook exited with 3'));
    expect(warning.output).toEqual(['no space on the backup disk']);
  });

  it('fails a job the API keeps pending past mastering.timeoutMinutes, saying so in the log once past half of it, and retry asks for it again', async () => {
    sandbox = await startSandbox({ masteringSeconds: 0.5 });
    const dir = tempDir();
    const workspace = createWorkspace(dir, sandbox, {
      // 0.05 min: slow after 1.5 s, failed after 3 s.
      folder: { mastering: { outputDir: join(dir, 'masters'), pollIntervalSeconds: 0.2, timeoutMinutes: 0.05 } },
    });
    sandbox.faults.add({ target: 'mastering', kind: 'stuck-pending', times: 1 });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const mix = join(workspace.inbox, 'Stuck.wav');
    writeFileSync(mix, pcmWav(50_000));
    const failed = await waitForState(workspace, mix, 'failed', 20_000, () => daemon.output.slice(-2000));
    expect(failed.error).toMatch(/^the Cryo-mix API kept the mastering job pending for \d\.\d min, past mastering\.timeoutMinutes, 0\.1 min; run "cryomix-watch retry" to ask for it again$/);
    expect(daemon.logs.filter((r) => String(r.msg).includes('mastering is slow'))).toHaveLength(1);

    expect(runCli(workspace, ['retry', mix]).status).toBe(0);
    // A new start is asked for; this sandbox refuses a second job for the same Session-Id, and the first is polled again.
    await waitUntil(() => sandbox.requests().filter((r) => r.endpoint === 'mastering' && r.sessionId === failed.sessionId).length === 2, 20_000, () => daemon.output.slice(-2000));
  });
});
