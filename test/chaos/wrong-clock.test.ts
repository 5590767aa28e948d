import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { wrongClockEnv } from '../helpers/clock.js';
import { createWorkspace, listJobs, runCliAsync, useDaemons, waitUntil } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected } from './harness.js';

const tempDir = useTempDir('cryomix-chaos-clock-');
const { startSandbox, startDaemon } = useDaemons();

const FILES = scaled(3, 20);
const OFFSETS = ['+1200s', '-1200s'];
const environments = new Map(OFFSETS.map((offset) => [offset, wrongClockEnv(offset)]));
const unavailable = [...environments.values()].find((env): env is string => typeof env === 'string');
if (unavailable !== undefined) console.log(`wrong-clock scenarios: ${unavailable}`);

/**
 * The machine's clock 20 minutes off, storage's right: the sandbox runs in
 * this process on the real clock, the daemon and `check` under libfaketime.
 */
describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('chaos 11: this machine\'s clock is 20 minutes off (skipped outside CI where faketime cannot be installed)', () => {
  it.each(OFFSETS)('uploads every file once at %s, and check warns without failing', async (offset) => {
    const env = environments.get(offset);
    if (typeof env === 'string') throw new Error(env);
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const real = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY });
    const workspace = { ...real, env: { ...real.env, ...env } };
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const expected: Expected[] = [];
    for (let n = 0; n < FILES; n++) {
      const bytes = pcmWav(200_000 + n);
      const path = join(workspace.inbox, `mix ${n}.wav`);
      writeFileSync(path, bytes);
      expected.push({ path, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
    await waitUntil(
      async () => (await listJobs(workspace)).filter((job) => job.state === 'done').length === FILES,
      scaled(20_000, 60_000),
      async () => JSON.stringify((await listJobs(workspace)).filter((job) => job.state !== 'done').map(({ path, state, error }) => ({ path, state, error }))),
    );
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const checked = await runCliAsync(workspace, ['check', '--json']);
    const clock = (JSON.parse(checked.stdout) as { checks: { verdict: string; check: string; detail: string }[] }).checks.find((line) => line.check === 'clock');
    const ahead = offset.startsWith('+') ? 'ahead of' : 'behind';
    expect(clock).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(new RegExp(`^20 min ${ahead} .*uploads are not affected`)) });

    const result = audit(workspace, sandbox, expected);
    const leaks = secretLeaks([daemon.output, checked.stdout, checked.stderr], workspace);
    report({
      scenario: `clock ${offset} off`,
      rounds: 1,
      files: FILES,
      lost: result.lost,
      duplicated: result.duplicated,
      corrupted: result.corrupted,
      checksPassed: result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && leaks.length === 0,
      extra: { maxSessionIdsPerFile: result.maxSessionIdsPerVersion, checkClock: clock?.verdict ?? 'missing' },
    });
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(leaks).toEqual([]);
  });
});
