import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { chunk, fmtChunk, pcmWav, wav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, runCliAsync, useDaemons, waitForState, waitUntil, type DaemonProcess, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected } from './harness.js';
import { bindfsUnavailable, useBindfs, type FuseShare } from './mounts.js';

const tempDir = useTempDir('cryomix-chaos-share-');
const bindfs = useBindfs();
// After useBindfs: afterEach hooks run last-registered first, so the daemons are dead before a share is unmounted.
const { startSandbox, startDaemon } = useDaemons();

const unavailable = process.getuid?.() === 0 ? bindfsUnavailable() : 'mounting FUSE needs root';
if (unavailable !== undefined) console.log(`NAS share scenarios: ${unavailable}`);
const skip = unavailable !== undefined && process.env.CI !== 'true';

const ROUNDS = scaled(1, 5);
const LOCAL_FILES = scaled(3, 10);
const SETTLE_SECONDS = 0.3;
const GRACE_SECONDS = 2;
/** The bounds: /healthz must say so within this of a freeze or unmount, and a local file be done within settle + 5 s. */
const HEALTH_WITHIN_MS = 60_000;
const LOCAL_DONE_WITHIN_MS = SETTLE_SECONDS * 1000 + 5_000;

interface Setup {
  sandbox: Sandbox;
  workspace: Workspace;
  share: FuseShare;
  expected: Expected[];
  /** Writes a mix into `dir` and expects it stored. */
  drop(dir: string, name: string, bytes?: number): string;
}

/**
 * A local folder (the workspace's inbox) and a NAS share beside it: a bindfs
 * mount, polled as any FUSE share is, whose backing directory stands for the
 * NAS's own disk, where other machines write.
 */
async function setUp(): Promise<Setup> {
  if (unavailable !== undefined) throw new Error(unavailable);
  const dir = tempDir();
  const sandbox = await startSandbox({ apiKey: CANARY_KEY });
  const workspace = createWorkspace(dir, sandbox, {
    apiKey: CANARY_KEY,
    http: { listen: '127.0.0.1:0' },
    // One upload at a time: an upload stuck on the share would then hold up every other, unless it gives its slot back.
    uploads: { shutdownGraceSeconds: GRACE_SECONDS, concurrency: 1 },
    folder: { settleSeconds: SETTLE_SECONDS, answerTimeoutSeconds: 2 },
  });
  const share = await bindfs.share(join(dir, 'nas-disk'), join(dir, 'nas'));
  const config = JSON.parse(readFileSync(workspace.configFile, 'utf8')) as { folders: Record<string, unknown>[] };
  config.folders.push({ path: share.path, settleSeconds: SETTLE_SECONDS, pollIntervalSeconds: 0.5, answerTimeoutSeconds: 2 });
  writeFileSync(workspace.configFile, JSON.stringify(config, null, 2));
  const expected: Expected[] = [];
  let n = 0;
  const drop = (where: string, name: string, size = 40_000) => {
    const bytes = pcmWav(size + n++);
    const path = join(where, name);
    writeFileSync(path, bytes);
    // Stored under the path the daemon sees: a file written to the NAS's disk appears on the share.
    const seen = where === share.backing ? join(share.path, name) : path;
    expected.push({ path: seen, sha256: createHash('sha256').update(bytes).digest('hex') });
    return seen;
  };
  return { sandbox, workspace, share, expected, drop };
}

async function listening(daemon: DaemonProcess): Promise<string> {
  return (await daemon.waitForLog((r) => typeof r.url === 'string')).url as string;
}

async function health(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, text: await response.text() };
}

/** How long until /healthz answers `status` with a body matching `text`. */
async function healthTurns(url: string, status: number, text: RegExp): Promise<number> {
  const from = performance.now();
  let last = { status: 0, text: '' };
  await waitUntil(async () => {
    last = await health(url);
    return last.status === status && text.test(last.text);
  }, HEALTH_WITHIN_MS, () => `/healthz did not turn ${status} matching ${text}: last ${last.status} ${last.text}`);
  return performance.now() - from;
}

/** A CLI command that must finish by itself within `limitMs`, however the share behaves. */
async function finishes(workspace: Workspace, args: string[], limitMs: number): Promise<{ status: number | null; stdout: string; ms: number }> {
  const from = performance.now();
  const run = runCliAsync(workspace, args);
  const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${args.join(' ')} did not finish within ${limitMs} ms`)), limitMs).unref());
  const result = await Promise.race([run, timeout]);
  return { ...result, ms: performance.now() - from };
}

function finalAudit(setup: Setup, scenario: string, outputs: string[], extra: Record<string, number>): void {
  const { workspace, sandbox, expected } = setup;
  const result = audit(workspace, sandbox, expected);
  const leaks = secretLeaks(outputs, workspace);
  // Declared gone while it was only out of reach. (A version replaced by a newer one is `removed` too, rightly.)
  const removed = outputs.join('\n').split('\n').filter((line) => line.includes('"to":"removed"') && line.includes('the file disappeared')).length;
  report({
    scenario,
    rounds: ROUNDS,
    files: expected.length,
    lost: result.lost,
    duplicated: result.duplicated,
    corrupted: result.corrupted,
    checksPassed: result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && leaks.length === 0 && removed === 0,
    extra: { ...extra, maxSessionIdsPerFile: result.maxSessionIdsPerVersion, markedRemoved: removed, secretLeaks: leaks.length },
  });
  expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
  expect(removed).toBe(0);
  expect(leaks).toEqual([]);
}

describe.skipIf(skip)('chaos 12: a NAS share hangs or goes away (bindfs; skipped outside CI where it cannot be mounted)', () => {
  it('a frozen share holds up nothing but itself: health says so, local uploads, status, list and check carry on, a stop is prompt', async () => {
    const setup = await setUp();
    const { sandbox, workspace, share, drop } = setup;
    const outputs: string[] = [];
    let daemon = startDaemon(workspace);
    let url = await listening(daemon);
    await daemon.ready();
    await waitForState(workspace, drop(share.backing, 'on the share before.wav'), 'done');
    const figures = { healthMs: 0, slowestLocalMs: 0, checkMs: 0, stopMs: 0, backMs: 0 };
    const worst = (key: keyof typeof figures, ms: number) => {
      figures[key] = Math.max(figures[key], Math.round(ms));
    };

    for (let round = 0; round < ROUNDS; round++) {
      // A big mix from the share is being sent when it freezes: storage holds the PUT a moment, and then the next read
      // of the file waits on the frozen share.
      sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1_000_000, forMs: 1_500, times: 1 });
      const big = drop(share.backing, `round ${round} big.wav`, 16_000_000);
      await waitUntil(async () => {
        const job = await jobFor(workspace, big);
        return job?.state === 'uploading' && job.bytesSent > 0;
      });
      share.freeze();
      const dropped = drop(share.backing, `round ${round} dropped on the frozen share.wav`);
      worst('healthMs', await healthTurns(url, 503, new RegExp(`${share.path} has not answered for \\d+ s`)));

      const local = Array.from({ length: LOCAL_FILES }, (_, i) => ({ path: drop(workspace.inbox, `round ${round} local ${i}.wav`), at: performance.now() }));
      for (const file of local) {
        await waitForState(workspace, file.path, 'done', LOCAL_DONE_WITHIN_MS + 10_000);
        worst('slowestLocalMs', performance.now() - file.at);
      }

      const status = await finishes(workspace, ['status', '--json'], 10_000);
      expect((JSON.parse(status.stdout) as { folderProblems: string[] }).folderProblems).toEqual([expect.stringContaining(`${share.path} has not answered`)]);
      expect((await finishes(workspace, ['list', '--json'], 10_000)).status).toBe(0);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const silentFor = new RegExp(`^cryomix_watch_folder_problem_seconds\\{folder="${share.path}",problem="not answering"\\} (\\S+)$`, 'm').exec(metrics)?.[1];
      expect(Number(silentFor)).toBeGreaterThan(0);
      const check = await finishes(workspace, ['check', '--json'], 30_000);
      worst('checkMs', check.ms);
      const lines = (JSON.parse(check.stdout) as { checks: { verdict: string; check: string; detail: string }[] }).checks;
      expect(lines.find((line) => line.check === `folder ${share.path}`)).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining('does not answer') });
      expect(lines.find((line) => line.check === `folder ${workspace.inbox}`)?.verdict).toBe('PASS');

      // Half the time the share comes back while the daemon runs; otherwise the daemon is stopped while it hangs.
      if (round % 2 === 0) {
        share.thaw();
        worst('backMs', await healthTurns(url, 200, /^ok\n$/));
      } else {
        const from = performance.now();
        expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
        worst('stopMs', performance.now() - from);
        outputs.push(daemon.output);
        share.thaw();
        daemon = startDaemon(workspace);
        url = await listening(daemon);
        await daemon.ready();
      }
      for (const path of [big, dropped]) await waitForState(workspace, path, 'done', 30_000, async () => JSON.stringify(await jobFor(workspace, path)));
    }
    // Frozen once more, then stopped: the process must not wait for the calls stuck in the kernel.
    share.freeze();
    await daemon.waitForLog((r) => String(r.msg).includes('is not answering'), HEALTH_WITHIN_MS);
    const from = performance.now();
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    worst('stopMs', performance.now() - from);
    outputs.push(daemon.output);
    share.thaw();

    expect(figures.healthMs).toBeLessThanOrEqual(HEALTH_WITHIN_MS);
    expect(figures.slowestLocalMs).toBeLessThanOrEqual(LOCAL_DONE_WITHIN_MS);
    expect(figures.stopMs).toBeLessThanOrEqual((GRACE_SECONDS + 5) * 1000);
    finalAudit(setup, 'NAS share frozen (SIGSTOP)', outputs, figures);
  });

  it.each([
    ['unmounted cleanly', 'unmounted for \\d+ s', (share: FuseShare) => share.unmount()],
    ['killed', 'missing or unreadable for \\d+ s', async (share: FuseShare) => share.kill()],
  ] as const)('a share %s keeps its files: nothing marked removed, health 503 until it is back, then everything uploaded once', async (name, problem, takeAway) => {
    const setup = await setUp();
    const { sandbox, workspace, share, drop } = setup;
    const daemon = startDaemon(workspace);
    const url = await listening(daemon);
    await daemon.ready();
    const figures = { healthMs: 0, backMs: 0 };

    for (let round = 0; round < ROUNDS; round++) {
      await waitForState(workspace, drop(share.backing, `round ${round} uploaded before.wav`), 'done');
      // Held while the share is away: one queued behind a refused key, one a DAW is still writing (placeholder header).
      sandbox.faults.setUnauthorized(true);
      const queued = drop(share.backing, `round ${round} queued.wav`);
      const queuedBefore = await waitForState(workspace, queued, 'queued');
      const unfinished = join(share.path, `round ${round} still being written.wav`);
      writeFileSync(join(share.backing, `round ${round} still being written.wav`), wav([fmtChunk(), chunk('data', Buffer.alloc(40_000), 0)]));
      await waitForState(workspace, unfinished, 'waiting');

      await takeAway(share);
      figures.healthMs = Math.max(figures.healthMs, Math.round(await healthTurns(url, 503, new RegExp(`${share.path}: ${problem}`))));
      // Several root checks and polls while it is away.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect((await jobFor(workspace, queued))?.state).toBe('queued');
      expect((await jobFor(workspace, unfinished))?.state).toBe('waiting');

      await share.mount();
      sandbox.faults.setUnauthorized(false);
      figures.backMs = Math.max(figures.backMs, Math.round(await healthTurns(url, 200, /^ok\n$/)));
      // The DAW finishes the file.
      const finished = pcmWav(40_000 + 1000 * round);
      writeFileSync(join(share.backing, `round ${round} still being written.wav`), finished);
      setup.expected.push({ path: unfinished, sha256: createHash('sha256').update(finished).digest('hex') });
      const queuedAfter = await waitForState(workspace, queued, 'done', 30_000);
      expect(queuedAfter.sessionId).toBe(queuedBefore.sessionId);
      await waitForState(workspace, unfinished, 'done', 30_000);
    }
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(daemon.output).toContain(name === 'killed' ? 'is not there or not readable' : 'is unmounted');
    expect(figures.healthMs).toBeLessThanOrEqual(HEALTH_WITHIN_MS);
    finalAudit(setup, `NAS share ${name}`, [daemon.output], figures);
    expect((await listJobs(workspace)).every((job) => job.state === 'done')).toBe(true);
  });
});
