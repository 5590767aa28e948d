import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, useDaemons, waitForState, waitUntil, type DaemonProcess, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { canMountTmpfs, useTmpfs } from './mounts.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected } from './harness.js';

const tempDir = useTempDir('cryomix-chaos-disk-');
const FILES = scaled(40, 200);

const isRoot = process.getuid?.() === 0;
const tmpfs = useTmpfs();
// After useTmpfs: afterEach hooks run last-registered first, so the daemons are dead before their state disk is unmounted.
const { startSandbox, startDaemon } = useDaemons();

function dropFiles(workspace: Workspace, count: number, prefix: string): Expected[] {
  return Array.from({ length: count }, (_, n) => {
    const bytes = pcmWav(4_000 + n);
    const path = join(workspace.inbox, `${prefix} ${n}.wav`);
    writeFileSync(path, bytes);
    return { path, sha256: createHash('sha256').update(bytes).digest('hex') };
  });
}

async function allDone(workspace: Workspace, expected: readonly Expected[], timeoutMs = scaled(60_000, 180_000), describe: () => string | Promise<string> = () => unfinished(workspace, expected)): Promise<void> {
  const paths = new Set(expected.map((file) => file.path));
  await waitUntil(async () => (await listJobs(workspace)).filter((job) => paths.has(job.path) && job.state === 'done').length === expected.length, timeoutMs, describe);
}

/** The first few expected files that are not done, with their state and error. */
async function unfinished(workspace: Workspace, expected: readonly Expected[]): Promise<string> {
  const rows = new Map((await listJobs(workspace)).map((job) => [job.path, job]));
  const open = expected.filter((file) => rows.get(file.path)?.state !== 'done');
  const sample = open.slice(0, 3).map(({ path }) => ({ path, state: rows.get(path)?.state ?? 'no row', error: rows.get(path)?.error }));
  return `${open.length} of ${expected.length} not done, e.g. ${JSON.stringify(sample)}`;
}

function integrity(workspace: Workspace): string {
  const db = new Database(workspace.database, { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

/** A workspace whose state directory is its own small file system, to fill up or make read-only. */
async function workspaceWithStateOnTmpfs(): Promise<{ workspace: Workspace; stateDir: string; storage: Sandbox }> {
  const storage = await startSandbox({ apiKey: CANARY_KEY });
  const workspace = createWorkspace(tempDir(), storage, { apiKey: CANARY_KEY });
  const stateDir = join(workspace.database, '..');
  mkdirSync(stateDir, { recursive: true });
  tmpfs.mount(stateDir, 'size=64m,mode=0700');
  return { workspace, stateDir, storage };
}

const fatalLine = (daemon: DaemonProcess) => daemon.logs.find((record) => record.level === 60);

/** Root reads every file, so for a permission error to happen the daemon runs as user nobody (uid 65534), in a workspace it owns. */
async function daemonAsNobody(): Promise<{ dir: string; workspace: Workspace; sandbox: Sandbox; daemon: DaemonProcess }> {
  const sandbox = await startSandbox({ apiKey: CANARY_KEY });
  const dir = tempDir();
  const workspace = createWorkspace(dir, sandbox, { apiKey: CANARY_KEY });
  execFileSync('chown', ['-R', '65534:65534', dir]);
  chmodSync(dir, 0o755);
  const daemon = startDaemon(workspace, [], { uid: 65534 });
  await daemon.ready();
  return { dir, workspace, sandbox, daemon };
}

/**
 * The state DB's file system fails under a running daemon. It must stop
 * taking work and exit non-zero with a clear line, leave a consistent DB,
 * and finish everything once the disk is fixed and it is started again.
 */
async function dbFault(breakDisk: (stateDir: string) => void, fixDisk: (stateDir: string) => void): Promise<{ exit: number | null; fatal: string; integrity: string; figures: ReturnType<typeof audit>; leaks: string[] }> {
  const { workspace, stateDir, storage } = await workspaceWithStateOnTmpfs();
  const first = startDaemon(workspace);
  await first.ready();
  breakDisk(stateDir);
  const expected = dropFiles(workspace, FILES, 'during the fault');
  const { code } = await first.exited;
  const fatal = String(fatalLine(first)?.msg ?? '');
  const consistent = integrity(workspace);

  fixDisk(stateDir);
  const second = startDaemon(workspace);
  await second.ready();
  await allDone(workspace, expected);
  await second.stop('SIGTERM');
  return { exit: code, fatal, integrity: consistent, figures: audit(workspace, storage, expected), leaks: secretLeaks([first.output, second.output], workspace) };
}

describe('chaos 6: disk and DB faults', () => {
  it.skipIf(!canMountTmpfs)('stops with exit 1 when the DB disk is full, keeps the DB consistent, and finishes after the disk is grown (skipped unless root can mount a tmpfs)', async () => {
    const outcome = await dbFault(
      (dir) => execFileSync('mount', ['-o', 'remount,size=200k', dir]),
      (dir) => execFileSync('mount', ['-o', 'remount,size=64m', dir]),
    );
    expect(outcome.exit).toBe(1);
    expect(outcome.fatal).toMatch(/state database failed/);
    expect(outcome.integrity).toBe('ok');
    expect(outcome.figures).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    reportFault('DB disk full', outcome);
  });

  it.skipIf(!canMountTmpfs)('refuses to start on a read-only DB file system with a clear error, and finishes once it is writable (skipped unless root can mount a tmpfs)', async () => {
    const { workspace, stateDir, storage } = await workspaceWithStateOnTmpfs();
    const first = startDaemon(workspace);
    await first.ready();
    const early = dropFiles(workspace, 3, 'before');
    await allDone(workspace, early);
    await first.stop('SIGTERM');
    // A file system with open files cannot become read-only; between runs it can, as after a disk error.
    execFileSync('mount', ['-o', 'remount,ro', stateDir]);
    const expected = [...early, ...dropFiles(workspace, FILES, 'while read-only')];
    const refused = startDaemon(workspace);
    const { code } = await refused.exited;
    expect(code).toBe(1);
    expect(refused.output).toMatch(/cannot open the state database .*state\.db: .*(read-only|readonly)/i);

    execFileSync('mount', ['-o', 'remount,rw', stateDir]);
    const second = startDaemon(workspace);
    await second.ready();
    await allDone(workspace, expected);
    await second.stop('SIGTERM');
    const outcome = { exit: code, fatal: '', integrity: integrity(workspace), figures: audit(workspace, storage, expected), leaks: secretLeaks([first.output, refused.output, second.output], workspace) };
    expect(outcome.figures).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    reportFault('DB read-only at start', outcome);
  });

  it.skipIf(!isRoot)('keeps an unreadable file waiting with the reason while the others upload, and uploads it once readable (skipped unless run as root, to become user nobody)', async () => {
    const { workspace, sandbox, daemon } = await daemonAsNobody();
    const locked = join(workspace.inbox, 'locked.wav');
    const lockedBytes = pcmWav(8_000);
    writeFileSync(locked, lockedBytes);
    chmodSync(locked, 0o000);
    const expected = dropFiles(workspace, 5, 'readable');
    await allDone(workspace, expected, undefined, () => daemon.output.slice(-2500));
    const describeLocked = async () => JSON.stringify(await jobFor(workspace, locked)) + daemon.output.split('\n').filter((l) => l.includes('locked')).join('\n');
    const refused = await waitUntil(async () => {
      const job = await jobFor(workspace, locked);
      return job?.state === 'waiting' && /permission denied/.test(job.error ?? '') && job;
    }, undefined, describeLocked);
    expect(refused.error).toMatch(/permission denied \(give the cryomix-watch user read access\); looked at again at each poll or rescan/);
    // Permissions fixed (or the SMB client's lock released): the file goes on by itself.
    chmodSync(locked, 0o644);
    await waitForState(workspace, locked, 'done', undefined, describeLocked);
    const warnings = daemon.logs.filter((record) => record.level === 40 && String(record.msg).includes('locked.wav')).length;
    expect(warnings).toBe(1);
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expected.push({ path: locked, sha256: createHash('sha256').update(lockedBytes).digest('hex') });
    const figures = audit(workspace, sandbox, expected);
    const leaks = secretLeaks([daemon.output, JSON.stringify(await listJobs(workspace))], workspace);
    expect(figures).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0 });
    expect(leaks).toEqual([]);
    report({
      scenario: 'EACCES on a file',
      rounds: 1,
      files: expected.length,
      lost: figures.lost,
      duplicated: figures.duplicated,
      corrupted: figures.corrupted,
      checksPassed: /permission denied/.test(refused.error ?? '') && warnings === 1 && leaks.length === 0,
      extra: { waitedWithReason: 1, warnings, secretLeaks: leaks.length },
    });
  });

  it.skipIf(!isRoot)('names a sub-folder copied in that it cannot read, and the fix (skipped unless run as root, to become user nobody)', async () => {
    const { dir, workspace, daemon } = await daemonAsNobody();
    // Made elsewhere and moved in whole, as a copied album arrives: its files raise no events of their own.
    const staged = join(dir, 'Album');
    mkdirSync(staged);
    writeFileSync(join(staged, 'track.wav'), pcmWav(8_000));
    chmodSync(staged, 0o700);
    renameSync(staged, join(workspace.inbox, 'Album'));
    const line = await daemon.waitForLog((record) => String(record.msg).startsWith(`cannot read ${join(workspace.inbox, 'Album')}`));
    expect(line.level).toBe(50);
    expect(line.msg).toMatch(/permission denied.*give the cryomix-watch user access/);
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('degrades instead of crashing when it runs out of file descriptors (ulimit -n 128)', async () => {
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, uploads: { concurrency: 4 } });
    const daemon = startDaemon(workspace, [], { maxOpenFiles: 128 });
    await daemon.ready();
    const expected = dropFiles(workspace, scaled(300, 1000), 'crowd');
    await allDone(workspace, expected, scaled(120_000, 300_000));
    const running = daemon.exited.then(() => false);
    expect(await Promise.race([running, new Promise((resolve) => setTimeout(() => resolve(true), 100))])).toBe(true);
    expect(fatalLine(daemon)).toBeUndefined();
    const emfileWarnings = daemon.logs.filter((record) => JSON.stringify(record).includes('EMFILE')).length;
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const figures = audit(workspace, sandbox, expected);
    const leaks = secretLeaks([daemon.output], workspace);
    expect(figures).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, unfinished: [], integrity: 'ok' });
    expect(leaks).toEqual([]);
    report({
      scenario: 'EMFILE (ulimit -n 128)',
      rounds: 1,
      files: expected.length,
      lost: figures.lost,
      duplicated: figures.duplicated,
      corrupted: figures.corrupted,
      checksPassed: leaks.length === 0 && figures.unfinished.length === 0,
      extra: { emfileEvents: emfileWarnings, crashed: 0 },
    });
    // Longer than allDone's wait, so that a stuck file is named rather than cut off by the test's timeout.
  }, scaled(150_000, 30 * 60_000));
});

function reportFault(name: string, outcome: Awaited<ReturnType<typeof dbFault>>): void {
  report({
    scenario: name,
    rounds: 1,
    files: FILES,
    lost: outcome.figures.lost,
    duplicated: outcome.figures.duplicated,
    corrupted: outcome.figures.corrupted,
    checksPassed: outcome.exit === 1 && outcome.integrity === 'ok' && outcome.figures.unfinished.length === 0 && outcome.leaks.length === 0,
    extra: { exitStatus: String(outcome.exit), integrity: outcome.integrity, secretLeaks: outcome.leaks.length },
  });
  expect(outcome.leaks).toEqual([]);
}
