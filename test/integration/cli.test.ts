import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/db.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import { pcmWav } from '../helpers/audio.js';
import { CLI, createWorkspace, jobFor, runCli, runCliAsync, useWorkspace, waitUntil, type Workspace } from '../helpers/daemon.js';

const { sandbox, workspace, tempDir, startDaemon } = useWorkspace();

describe('cryomix-watch upload FILE', () => {
  it('uploads in the foreground into the same state DB, and says so', async () => {
    const path = join(workspace.dir, 'one shot.wav');
    writeFileSync(path, pcmWav(50_000));
    const result = await runCliAsync(workspace, ['upload', path]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/one shot\.wav: done, session [0-9a-f-]{36}/);
    expect(await jobFor(workspace, path)).toMatchObject({ state: 'done' });
    expect(sandbox.objects()).toHaveLength(1);

    const again = await runCliAsync(workspace, ['upload', path]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/one shot\.wav: already uploaded earlier \(session [0-9a-f-]{36}\), not sent again/);
    expect(sandbox.objects()).toHaveLength(1);
  });

  it("follows the daemon's upload of the same file, instead of reporting it half way", async () => {
    // Storage holds the daemon's PUT for a moment, so that the command finds the file being uploaded.
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1_000, forMs: 2_000 });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'busy.wav');
    writeFileSync(path, pcmWav(50_000));
    await waitUntil(async () => (await jobFor(workspace, path))?.state === 'uploading');
    const result = await runCliAsync(workspace, ['upload', path]);
    expect(result.stdout).toMatch(new RegExp(`^busy\\.wav: another cryomix-watch process \\(pid ${daemon.pid}\\) is uploading it; following it\n`));
    expect(result.stdout).toMatch(/\nbusy\.wav: done, session [0-9a-f-]{36}/);
    expect(result.status).toBe(0);
    expect(sandbox.objects()).toHaveLength(1);
  });

  it('refuses an unfinished WAV and a missing file with the reason, exiting 1', async () => {
    const unfinished = join(workspace.dir, 'unfinished.wav');
    const complete = pcmWav(50_000);
    complete.writeUInt32LE(0, 4);
    writeFileSync(unfinished, complete);
    const result = await runCliAsync(workspace, ['upload', unfinished, join(workspace.dir, 'missing.wav')]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^unfinished\.wav: WAV header says.*wait until the export has finished$/m);
    expect(result.stdout).toMatch(/^missing\.wav: no such file \(or not a regular file\)$/m);
    expect(result.stderr).toMatch(/2 of 2 file\(s\) not uploaded/);
    expect(sandbox.requests()).toHaveLength(0);
  });
});

describe('cryomix-watch upload FILE, interrupted', () => {
  it('parks the file as retrying on Ctrl-C, not failed', async () => {
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1 });
    const path = join(workspace.dir, 'long.wav');
    writeFileSync(path, pcmWav(300_000));
    const child = spawn(process.execPath, [CLI, 'upload', path, '--config', workspace.configFile], { env: workspace.env, stdio: 'ignore' });
    await waitUntil(() => sandbox.requests().some((r) => r.endpoint === 'put'));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(await jobFor(workspace, path)).toMatchObject({ state: 'retrying', error: 'interrupted by shutdown; resumes on the next start' });
  });
});

describe('status, list and retry', () => {
  it('do not create a state database that does not exist yet, and say why', () => {
    for (const command of [['status'], ['list'], ['retry', '--failed']]) {
      const result = runCli(workspace, command);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/no state database at .*state\.db yet: the daemon has not run with this configuration/);
    }
    expect(existsSync(workspace.database)).toBe(false);
  });

  it('refuses an unknown --state as a usage error', () => {
    const result = runCli(workspace, ['list', '--state', 'bogus']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Allowed choices are waiting, queued/);
  });
});

describe('cryomix-watch check', () => {
  it('passes against a working API and folder', async () => {
    const result = await runCliAsync(workspace, ['check']);
    expect(result.stdout).toMatch(/^PASS  config/m);
    expect(result.stdout).toMatch(/^PASS  API key: accepted/m);
    expect(result.status).toBe(0);
  });

  it('fails on a rejected key and a missing folder, naming the fix', async () => {
    createWorkspace(workspace.dir, sandbox, { folder: { path: join(workspace.dir, 'not-mounted') } });
    const result = await runCliAsync(workspace, ['check', '--json'], { CRYOMIX_API_KEY: 'wrong-key' });
    expect(result.status).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { verdict: string; check: string; detail: string }[] };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.check === 'API key')).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/CRYOMIX_API_KEY/) });
    expect(report.checks.find((c) => c.check.includes('not-mounted'))).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/does not exist/) });
  });
});

describe('cryomix-watch check without a key', () => {
  it('reports the missing key as a FAIL line with the fix, after the other checks', async () => {
    const result = await runCliAsync(workspace, ['check'], { CRYOMIX_API_KEY: '' });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^PASS  state database/m);
    expect(result.stdout).toMatch(/^FAIL  API key: config: .*CRYOMIX_API_KEY/m);
  });
});

describe('cryomix-watch status', () => {
  it('warns when masters have waited more than a day to be downloaded', async () => {
    const twoDaysAgo = Date.now() - 2 * 24 * 3600_000;
    const db = openDatabase(workspace.database);
    const store = new SqliteJobStore(db, { now: () => twoDaysAgo });
    const job = await store.createVersion({ folder: workspace.inbox, path: join(workspace.inbox, 'old.wav'), size: 1, mtimeMs: 1 });
    for (const state of ['queued', 'uploading', 'uploaded', 'mastering', 'downloading'] as const) await store.transition(job.id, state);
    db.close();
    const human = runCli(workspace, ['status']);
    expect(human.stdout).toMatch(/WARNING: the masters of 1 file\(s\) have waited more than a day .*deletes results 7 days after mastering/);
    expect(JSON.parse(runCli(workspace, ['status', '--json']).stdout)).toMatchObject({ downloadsWaitingOverADay: 1, counts: { downloading: 1 } });
  });
});

describe('bad configuration', () => {
  it('exits 78 with one line naming the key', () => {
    writeFileSync(workspace.configFile, 'folders:\n  - path: ./in\n    settleSeconds: -1\n');
    for (const command of [['run'], ['status'], ['check']]) {
      const result = runCli(workspace, command);
      expect(result.status).toBe(78);
      expect(result.stderr).toBe('config: folders[0].settleSeconds: expected a number greater than 0, got -1\n');
    }
  });
});

describe('cryomix-watch run --sandbox (what npm start runs)', () => {
  it('creates the inbox, prints where to drop files and how to see status, and uploads a dropped WAV', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config', 'sandbox.yaml'), 'state:\n  database: ../.state/state.db\nfolders:\n  - path: ../inbox\n    settleSeconds: 0.3\n');
    const child = spawn(process.execPath, [CLI, 'run', '--sandbox', '--config', 'config/sandbox.yaml', '--log-format', 'pretty'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    try {
      await waitUntil(() => stderr.includes('drop WAV or MP3'));
      expect(stderr).toContain('cryomix-watch is watching ./inbox');
      // npx only where the command is the checkout's own (cwd is the checkout); this CLI lives outside the test's directory.
      expect(stderr).toContain(' cryomix-watch status --config config/sandbox.yaml');
      expect(stderr).not.toContain('npx');
      expect(existsSync(join(dir, 'inbox'))).toBe(true);
      writeFileSync(join(dir, 'inbox', 'first mix.wav'), pcmWav(1_100_000));
      const local: Workspace = { ...workspace, configFile: join(dir, 'config', 'sandbox.yaml'), database: join(dir, '.state', 'state.db') };
      await waitUntil(async () => (await jobFor(local, join(dir, 'inbox', 'first mix.wav')))?.state === 'done');
      expect(runCli(local, ['status']).stdout).toMatch(/done\s+1/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('writes only JSON log lines with the default log format, as a service journal holds them', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    await daemon.stop('SIGTERM');
    const lines = daemon.output.split('\n').filter((line) => line.trim() !== '');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
  });
});
