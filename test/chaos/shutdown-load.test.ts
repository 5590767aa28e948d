import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, useDaemons, waitUntil, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, FULL, readJobRows, report, scaled, secretLeaks, type Expected, type JobRow } from './harness.js';
import { between, chaosSeed, seededRandom } from './random.js';

/*
 * Scenario 10: a clean stop in the middle of uploads parks them and a start
 * resumes them with their Session-Ids; a large drop of small files at once
 * ends with every one stored once, without running out of descriptors.
 */

const tempDir = useTempDir('cryomix-chaos-shutdown-');
const { startSandbox, startDaemon } = useDaemons();
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The live rows, as the daemon committed them. */
function readRows(workspace: Workspace): JobRow[] {
  return readJobRows(workspace).filter((row) => row.current === 1);
}

function stateCounts(workspace: Workspace): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of readRows(workspace)) counts[row.state] = (counts[row.state] ?? 0) + 1;
  return counts;
}

/** The daemon's peak resident set (kB): Linux keeps the high-water mark for us. */
function peakRssKb(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]);
}

const figures = { files: 0, lost: 0, duplicated: 0, corrupted: 0, extra: {} as Record<string, number | string> };
let ran = 0;
/** Tests that reached their last assertion. */
let completed = 0;

afterAll(() => {
  if (ran === 0) return;
  report({ scenario: 'shutdown + load', rounds: 1, ...figures, checksPassed: completed === 2 });
});

describe('chaos 10: shutdown and load', () => {
  it('SIGTERM during three uploads exits 0 within the grace period; they resume after a start with their Session-Ids', async () => {
    const GRACE_SECONDS = 2;
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    // The stall would only be noticed after 30 s: the grace period, not the watchdog, must end these PUTs.
    const workspace = createWorkspace(tempDir(), sandbox, {
      apiKey: CANARY_KEY,
      uploads: { concurrency: 3, stallTimeoutSeconds: 30, shutdownGraceSeconds: GRACE_SECONDS },
    });
    const first = startDaemon(workspace);
    await first.ready();
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 64 * 1024, times: 3 });
    const files: Expected[] = [];
    for (const name of ['take 1.wav', 'take 2.wav', 'take 3.wav']) {
      const bytes = pcmWav(1024 * 1024);
      const path = join(workspace.inbox, name);
      writeFileSync(path, bytes);
      files.push({ path, sha256: sha256(bytes) });
    }
    // All three are mid-PUT: storage has their first bytes and reads no more.
    await waitUntil(
      () => {
        const rows = readRows(workspace);
        const puts = sandbox.requests().filter((r) => r.endpoint === 'put' && r.status === 0);
        return puts.length === 3 && files.every((file) => rows.find((row) => row.path === file.path)?.state === 'uploading');
      },
      20_000,
      () => JSON.stringify({ rows: readRows(workspace), requests: sandbox.requests() }),
    );
    const sessions = new Map(readRows(workspace).map((row) => [row.path, row.session_id]));

    const stopAt = Date.now();
    const exit = await first.stop('SIGTERM');
    const stopMs = Date.now() - stopAt;
    console.log(`chaos shutdown: exit ${JSON.stringify(exit)} ${stopMs} ms after SIGTERM (grace ${GRACE_SECONDS} s)`);
    expect(exit).toEqual({ code: 0, signal: null });
    // It lets running PUTs try to finish for the grace period, then stops within a few seconds.
    expect(stopMs).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000 - 250);
    expect(stopMs).toBeLessThan((GRACE_SECONDS + 5) * 1000);
    const parked = readRows(workspace).filter((row) => sessions.has(row.path));
    expect(parked.map((row) => [row.path, row.state, row.session_id]).sort()).toEqual(files.map((file) => [file.path, 'retrying', sessions.get(file.path)]).sort());
    expect(sandbox.objects()).toEqual([]);
    expect(first.logs.filter((r) => (r.level ?? 0) >= 50)).toEqual([]);

    const second = startDaemon(workspace);
    await second.ready();
    await waitUntil(() => files.every((file) => readRows(workspace).find((row) => row.path === file.path)?.state === 'done'), 20_000, () => JSON.stringify(readRows(workspace)));
    for (const row of readRows(workspace)) expect(row.session_id).toBe(sessions.get(row.path));
    // Every call about each file, before and after the restart, carried its one Session-Id.
    for (const sessionId of sessions.values()) {
      const calls = sandbox.requests().filter((r) => r.sessionId === sessionId);
      expect(calls.filter((r) => r.endpoint === 'put').map((r) => r.status)).toEqual([0, 200]);
    }
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const result = audit(workspace, sandbox, files);
    const leaks = secretLeaks([first.output, second.output], workspace);
    ran++;
    figures.files += files.length;
    figures.lost += result.lost;
    figures.duplicated += result.duplicated;
    figures.corrupted += result.corrupted;
    Object.assign(figures.extra, { stopMs, graceMs: GRACE_SECONDS * 1000 });
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(leaks).toEqual([]);
    completed++;
  });

  const N = scaled(300, 10_000);

  it(`uploads ${N} small files dropped at once: all done, no EMFILE, no error lines`, { timeout: scaled(60_000, 30 * 60_000) }, async () => {
    const seed = chaosSeed();
    console.log(`chaos load: seed ${seed} (CHAOS_SEED=${seed} replays it), ${N} files`);
    const random = seededRandom(seed);
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const dir = tempDir();
    const workspace = createWorkspace(dir, sandbox, { apiKey: CANARY_KEY, uploads: { minBytes: 1000, concurrency: 4 } });

    // Written beside the inbox first, so the drop itself is only renames: every file lands within a moment.
    const staging = join(dir, 'staging');
    mkdirSync(staging);
    const files: Expected[] = [];
    const names: string[] = [];
    for (let n = 0; n < N; n++) {
      const bytes = pcmWav(between(random, 2000, 6000));
      const name = `bounce ${String(n).padStart(5, '0')}.wav`;
      writeFileSync(join(staging, name), bytes);
      names.push(name);
      files.push({ path: join(workspace.inbox, name), sha256: sha256(bytes) });
    }

    const daemon = startDaemon(workspace);
    await daemon.ready();
    const droppedAt = Date.now();
    for (const name of names) renameSync(join(staging, name), join(workspace.inbox, name));
    const dropMs = Date.now() - droppedAt;

    let lastReport = Date.now();
    await waitUntil(
      () => {
        const counts = stateCounts(workspace);
        if (FULL && Date.now() - lastReport > 30_000) {
          lastReport = Date.now();
          console.log(`chaos load: ${Math.round((Date.now() - droppedAt) / 1000)} s ${JSON.stringify(counts)}`);
        }
        return counts.done === N;
      },
      scaled(50_000, 28 * 60_000),
      () => JSON.stringify(stateCounts(workspace)),
    );
    const seconds = (Date.now() - droppedAt) / 1000;
    const peakMb = Math.round(peakRssKb(daemon.pid) / 1024);
    console.log(`chaos load: ${N} files done in ${seconds.toFixed(1)} s (drop took ${dropMs} ms), daemon peak RSS ${peakMb} MB`);
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const errorLines = daemon.logs.filter((r) => (r.level ?? 0) >= 50);
    expect(errorLines.slice(0, 5)).toEqual([]);
    expect(daemon.output).not.toMatch(/EMFILE|ENFILE/);
    expect(sandbox.objects()).toHaveLength(N);
    const result = audit(workspace, sandbox, files);
    ran++;
    figures.files += N;
    figures.lost += result.lost;
    figures.duplicated += result.duplicated;
    figures.corrupted += result.corrupted;
    Object.assign(figures.extra, { loadFiles: N, loadSeconds: Number(seconds.toFixed(1)), peakRssMB: peakMb, errorLines: errorLines.length, seed });
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(secretLeaks([daemon.output], workspace)).toEqual([]);
    completed++;
  });
});
