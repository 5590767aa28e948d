import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, useDaemons, waitForState, waitUntil, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { canMountTmpfs, useTmpfs } from './mounts.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected } from './harness.js';

const tempDir = useTempDir('cryomix-chaos-nas-');
const ROUNDS = scaled(1, 10);

const tmpfs = useTmpfs();
// After useTmpfs: afterEach hooks run last-registered first, so the daemons are dead before a share is unmounted.
const { startSandbox, startDaemon } = useDaemons();

interface Flap {
  name: string;
  /** Takes the folder away, returning a function that brings the same files back. */
  takeAway(workspace: Workspace): Promise<() => void>;
  setUp?(workspace: Workspace): void;
}

const renamedRoot: Flap = {
  name: 'root renamed away and back',
  async takeAway(workspace) {
    renameSync(workspace.inbox, `${workspace.inbox}.away`);
    return () => renameSync(`${workspace.inbox}.away`, workspace.inbox);
  },
};

const unmounted: Flap = {
  name: 'share unmounted and mounted again',
  setUp(workspace) {
    tmpfs.mount(workspace.inbox);
  },
  async takeAway(workspace) {
    // What the share holds, kept aside as the NAS keeps it while unmounted. `cp -a` keeps nanosecond
    // timestamps (fs.cpSync rounds them to milliseconds, which would make every file a new version).
    const share = `${workspace.inbox}.share`;
    rmSync(share, { recursive: true, force: true });
    execFileSync('cp', ['-a', workspace.inbox, share]);
    await tmpfs.unmount(workspace.inbox);
    return () => {
      tmpfs.mount(workspace.inbox);
      for (const name of readdirSync(share)) execFileSync('cp', ['-a', join(share, name), workspace.inbox]);
    };
  },
};

async function runFlaps(flap: Flap): Promise<void> {
  const sandbox = await startSandbox({ apiKey: CANARY_KEY });
  const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, folder: { pollIntervalSeconds: 0.5 } });
  flap.setUp?.(workspace);
  const daemon = startDaemon(workspace);
  await daemon.ready();
  const expected: Expected[] = [];
  const drop = (name: string) => {
    const bytes = pcmWav(60_000);
    const path = join(workspace.inbox, name);
    writeFileSync(path, bytes);
    expected.push({ path, sha256: createHash('sha256').update(bytes).digest('hex') });
    return path;
  };

  for (let round = 0; round < ROUNDS; round++) {
    const uploaded = drop(`round ${round} uploaded before.wav`);
    await waitForState(workspace, uploaded, 'done');
    // Held in the queue by a refused key while the folder flaps.
    sandbox.faults.setUnauthorized(true);
    const pending = drop(`round ${round} pending.wav`);
    const pendingBefore = await waitForState(workspace, pending, 'queued');

    const bringBack = await flap.takeAway(workspace);
    // Away for several root checks (every 0.5 s here), as a share that drops out for a while.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    bringBack();
    sandbox.faults.setUnauthorized(false);

    const after = drop(`round ${round} dropped after.wav`);
    await waitForState(workspace, after, 'done', 20_000, () => daemon.output.slice(-3000));
    const pendingAfter = await waitForState(workspace, pending, 'done', 20_000, async () =>
      `${JSON.stringify(await jobFor(workspace, pending))}\n${daemon.output.split('\n').filter((line) => line.includes(`round ${round} pending`) || line.includes('watched folder')).slice(-12).join('\n')}`,
    );
    expect(pendingAfter.sessionId).toBe(pendingBefore.sessionId);
    expect((await jobFor(workspace, uploaded))?.state).toBe('done');
  }

  expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  const result = audit(workspace, sandbox, expected);
  const reuploaded = expected.filter((file) => sandbox.objects().filter((o) => o.sha256 === file.sha256).length > 1).length;
  const leaks = secretLeaks([daemon.output, JSON.stringify(await listJobs(workspace))], workspace);
  const checksPassed = reuploaded === 0 && result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && result.integrity === 'ok' && leaks.length === 0;
  report({
    scenario: `NAS flap: ${flap.name}`,
    rounds: ROUNDS,
    files: expected.length,
    lost: result.lost,
    duplicated: result.duplicated,
    corrupted: result.corrupted,
    checksPassed,
    extra: { reuploaded, maxSessionIdsPerFile: result.maxSessionIdsPerVersion, secretLeaks: leaks.length },
  });
  expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
  expect(reuploaded).toBe(0);
  expect(leaks).toEqual([]);
}

describe('chaos 5: the watched folder disappears and comes back', () => {
  it('resumes by itself after the root is renamed away and back, re-uploading nothing and losing nothing', async () => {
    await runFlaps(renamedRoot);
  });

  it.skipIf(!canMountTmpfs)('resumes by itself after an unmount and remount with the same files (skipped unless root can mount a tmpfs)', async () => {
    await runFlaps(unmounted);
  });

  it('starts with the folder missing and begins watching once it appears', async () => {
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, folder: { pollIntervalSeconds: 0.5 } });
    rmSync(workspace.inbox, { recursive: true });
    const daemon = startDaemon(workspace);
    await daemon.ready();
    expect(daemon.logs.some((r) => String(r.msg).includes('is not there'))).toBe(true);
    mkdirSync(workspace.inbox);
    await daemon.waitForLog((r) => String(r.msg).includes('is back'));
    const path = join(workspace.inbox, 'first.wav');
    writeFileSync(path, pcmWav(20_000));
    await waitUntil(async () => (await jobFor(workspace, path))?.state === 'done');
  });
});
