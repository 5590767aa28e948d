import { createHash } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, listJobs, useDaemons, waitUntil, type LogRecord, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected, type JobRow } from './harness.js';
import { between, chaosSeed, seededRandom } from './random.js';

/**
 * Scenario 4: files that change or vanish after they were seen. Each case
 * drives one file into a precise state (held `queued` by a refused key, or
 * `uploading` with a PUT stalled on the wire), then rewrites, deletes or
 * renames it after a seeded random delay, and checks what storage ended up
 * with. One daemon serves every case, so a late upload of a version that
 * should have been dropped shows up in the final audit.
 */

const tempDir = useTempDir('cryomix-chaos-changed-');
const { startSandbox, startDaemon } = useDaemons();
let db: Database.Database | undefined;

afterEach(() => {
  db?.close();
  db = undefined;
});

const REPEATS = scaled(1, 20);
const CASES = ['modified while queued', 'modified while uploading', 'deleted while queued', 'deleted while uploading', 'renamed after upload'] as const;
type Case = (typeof CASES)[number];
/** "No error storm": a vanished file may be worth a line or two at warn/error level, not a stream of them. */
const MAX_ERROR_LINES = 2;
const CASE_TIMEOUT_MS = 20_000;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Outcome {
  /** File versions that must be stored (or deduped to a stored one), for the audit. */
  expected: Expected[];
  /** Session-Ids of versions that must never reach storage. */
  dropped: string[];
  errorLines: number;
}

describe('chaos 4: changed and vanished files', () => {
  it(`drops superseded and vanished versions and stores only final bytes, ${REPEATS} × ${CASES.length} cases`, async () => {
    const seed = chaosSeed();
    console.log(`chaos changed-vanished: seed ${seed} (CHAOS_SEED=${seed} replays it)`);
    const random = seededRandom(seed);
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    // A stalled PUT must stay on the wire until the test acts; the stall watchdog would otherwise end it first.
    const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, uploads: { stallTimeoutSeconds: 60, concurrency: 2 } });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    db = new Database(workspace.database, { readonly: true, fileMustExist: true });
    const state = db;

    const current = (path: string) => state.prepare('SELECT * FROM jobs WHERE path = ? AND current = 1').get(path) as JobRow | undefined;
    const bySession = (sessionId: string) => state.prepare('SELECT * FROM jobs WHERE session_id = ?').get(sessionId) as JobRow | undefined;
    const paused = () => state.prepare(`SELECT 1 FROM daemon WHERE key = 'paused'`).get() !== undefined;
    const putsFor = (sessionId: string) => sandbox.requests().filter((r) => r.endpoint === 'put' && r.sessionId === sessionId);
    const describeFile = (path: string) => () => JSON.stringify({ rows: state.prepare('SELECT * FROM jobs WHERE path = ?').all(path), requests: sandbox.requests().slice(-6) });
    const wait = <T>(probe: () => T | undefined | null | false, path: string) => waitUntil(probe, CASE_TIMEOUT_MS, describeFile(path));
    const errorLinesSince = (from: number) =>
      // The pause on a refused key is this test's doing (it holds files in `queued`), not a reaction to the file.
      daemon.logs.slice(from).filter((r: LogRecord) => (r.level ?? 0) >= 40 && r.paused !== true).length;

    /** Refuses the key and waits until `path` is held in `queued` with uploads paused. */
    async function holdQueued(path: string, bytes: Buffer): Promise<JobRow> {
      sandbox.faults.setUnauthorized(true);
      writeFileSync(path, bytes);
      return wait(() => paused() && current(path)?.state === 'queued' && current(path), path);
    }

    /** Stalls the next PUT after some of its body and waits until the PUT for `path` is on the wire. */
    async function holdUploading(path: string, bytes: Buffer): Promise<JobRow> {
      sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: between(random, 0, Math.floor(bytes.length / 2)) });
      writeFileSync(path, bytes);
      const row = await wait(() => current(path)?.state === 'uploading' && current(path), path);
      await wait(() => putsFor(row.session_id).length > 0, path);
      return row;
    }

    function release(): void {
      sandbox.faults.setUnauthorized(false);
    }

    async function modified(path: string, hold: 'queued' | 'uploading'): Promise<Outcome> {
      const first = pcmWav(between(random, 100_000, 400_000));
      const held = hold === 'queued' ? await holdQueued(path, first) : await holdUploading(path, first);
      const logsFrom = daemon.logs.length;
      await sleep(between(random, 0, 800));
      // A re-export that rewrites the file in place; a different length makes it a new version whatever the mtime granularity.
      const final = pcmWav(first.length + between(random, 1_000, 50_000));
      writeFileSync(path, final);
      await wait(() => bySession(held.session_id)?.state === 'removed', path);
      if (hold === 'queued') {
        await sleep(between(random, 0, 800));
        release();
      }
      const done = await wait(() => current(path)?.state === 'done' && current(path), path);

      const old = bySession(held.session_id)!;
      expect(old, `${path}: the old version is dropped`).toMatchObject({ state: 'removed', current: 0 });
      expect(old.error).toMatch(/newer version|changed/);
      expect(done.session_id).not.toBe(held.session_id);
      expect(done.sha256).toBe(sha256(final));
      // The old attempt stopped: at most the one PUT that was held, never answered, never repeated.
      expect(putsFor(held.session_id).length).toBeLessThanOrEqual(hold === 'uploading' ? 1 : 0);
      expect(putsFor(held.session_id).every((r) => r.status === 0)).toBe(true);
      expect(sandbox.objects().filter((o) => o.sessionId === held.session_id || o.sessionId === done.session_id).map((o) => o.sha256)).toEqual([sha256(final)]);
      return { expected: [{ path, sha256: sha256(final) }], dropped: [held.session_id], errorLines: errorLinesSince(logsFrom) };
    }

    async function deleted(path: string, hold: 'queued' | 'uploading'): Promise<Outcome> {
      const bytes = pcmWav(between(random, 100_000, 400_000));
      const held = hold === 'queued' ? await holdQueued(path, bytes) : await holdUploading(path, bytes);
      const logsFrom = daemon.logs.length;
      await sleep(between(random, 0, 800));
      rmSync(path);
      const removed = await wait(() => current(path)?.state === 'removed' && current(path), path);
      release();
      expect(removed.session_id).toBe(held.session_id);
      expect(removed.error).toMatch(/disappeared/);
      return { expected: [], dropped: [held.session_id], errorLines: errorLinesSince(logsFrom) };
    }

    async function renamed(path: string): Promise<Outcome> {
      const bytes = pcmWav(between(random, 100_000, 400_000));
      writeFileSync(path, bytes);
      const original = await wait(() => current(path)?.state === 'done' && current(path), path);
      const objectsBefore = sandbox.objects().length;
      const logsFrom = daemon.logs.length;
      await sleep(between(random, 0, 800));
      const newPath = path.replace(/\.wav$/, ' (renamed).wav');
      renameSync(path, newPath);
      const copy = await wait(() => current(newPath)?.state === 'done' && current(newPath), newPath);
      const original2 = current(path);
      expect(original2, 'the original keeps its history').toMatchObject({ state: 'done', session_id: original.session_id });
      expect(copy.duplicate_of).toBe(original.id);
      expect(copy.sha256).toBe(sha256(bytes));
      expect((await listJobs(workspace)).find((job) => job.path === newPath)).toMatchObject({ state: 'done', duplicateOf: path });
      expect(putsFor(copy.session_id)).toEqual([]);
      expect(sandbox.objects()).toHaveLength(objectsBefore);
      return {
        expected: [
          { path, sha256: sha256(bytes) },
          { path: newPath, sha256: sha256(bytes) },
        ],
        dropped: [],
        errorLines: errorLinesSince(logsFrom),
      };
    }

    const run: Record<Case, (path: string) => Promise<Outcome>> = {
      'modified while queued': (path) => modified(path, 'queued'),
      'modified while uploading': (path) => modified(path, 'uploading'),
      'deleted while queued': (path) => deleted(path, 'queued'),
      'deleted while uploading': (path) => deleted(path, 'uploading'),
      'renamed after upload': (path) => renamed(path),
    };

    const expected: Expected[] = [];
    const dropped: { path: string; sessionId: string }[] = [];
    const errorLines: Record<string, number> = {};
    for (let round = 0; round < REPEATS; round++) {
      for (const name of CASES) {
        const path = join(workspace.inbox, `round ${round} ${name}.wav`);
        const outcome = await run[name](path);
        sandbox.faults.clear();
        release();
        expected.push(...outcome.expected);
        dropped.push(...outcome.dropped.map((sessionId) => ({ path, sessionId })));
        errorLines[name] = Math.max(errorLines[name] ?? 0, outcome.errorLines);
      }
    }

    // Anything still settling or queued has had its chance before the daemon stops.
    await waitUntil(async () => (await listJobs(workspace)).every((job) => ['done', 'removed', 'rejected', 'failed'].includes(job.state)), CASE_TIMEOUT_MS, async () =>
      JSON.stringify((await listJobs(workspace)).filter((job) => job.state !== 'done')),
    );
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const droppedRows = dropped.map(({ sessionId }) => bySession(sessionId));
    state.close();
    db = undefined;

    const result = audit(workspace, sandbox, expected);
    const storedDropped = sandbox.objects().filter((o) => dropped.some((d) => d.sessionId === o.sessionId)).length;
    const leaks = secretLeaks([daemon.output], workspace);
    const stormy = Object.entries(errorLines).filter(([, lines]) => lines > MAX_ERROR_LINES);
    const fatal = daemon.logs.filter((r) => (r.level ?? 0) >= 60);
    const allRemoved = droppedRows.every((row) => row?.state === 'removed');
    const sound = result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && result.integrity === 'ok';
    report({
      checksPassed: allRemoved && storedDropped === 0 && stormy.length === 0 && fatal.length === 0 && sound && leaks.length === 0,
      scenario: 'changed and vanished files',
      rounds: REPEATS,
      files: REPEATS * CASES.length,
      lost: result.lost,
      duplicated: result.duplicated,
      corrupted: result.corrupted + storedDropped,
      extra: { storedDroppedVersions: storedDropped, maxErrorLinesPerCase: Math.max(...Object.values(errorLines)), maxSessionIdsPerVersion: result.maxSessionIdsPerVersion, secretLeaks: leaks.length, seed },
    });
    expect(droppedRows.map((row) => row?.state)).toEqual(dropped.map(() => 'removed'));
    expect(storedDropped, 'no dropped or deleted version reached storage').toBe(0);
    expect(stormy, `at most ${MAX_ERROR_LINES} warn/error lines per case`).toEqual([]);
    expect(fatal).toEqual([]);
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(leaks).toEqual([]);
  });
});
