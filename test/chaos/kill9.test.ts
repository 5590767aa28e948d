import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Fault } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, listJobs, useDaemons, waitUntil } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected } from './harness.js';
import { between, chaosSeed, seededRandom } from './random.js';

const tempDir = useTempDir('cryomix-chaos-kill9-');
const { startSandbox, startDaemon } = useDaemons();

const ROUNDS = scaled(3, 50);
const FILES_PER_ROUND = scaled(4, 20);
const MB = 1024 * 1024;

function randomFault(random: () => number): Fault {
  const afterBytes = between(random, 0, MB);
  switch (between(random, 0, 3)) {
    case 0:
      return { target: 'put', kind: 'reset', afterBytes };
    case 1:
      return { target: 'put', kind: 'stall', afterBytes };
    case 2:
      return { target: 'put', kind: 'status', status: [500, 502, 503, 504][between(random, 0, 3)]! };
    default:
      return { target: 'multi-upload', kind: 'status', status: 503, retryAfterSeconds: 1 };
  }
}

describe('chaos 1: kill -9 at random instants', () => {
  it(`stores every file exactly once with the right bytes over ${ROUNDS} rounds × ${FILES_PER_ROUND} files`, async () => {
    const seed = chaosSeed();
    console.log(`chaos kill9: seed ${seed} (CHAOS_SEED=${seed} replays it)`);
    const random = seededRandom(seed);
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, uploads: { concurrency: 2 } });
    const expected: Expected[] = [];
    const outputs: string[] = [];

    for (let round = 0; round < ROUNDS; round++) {
      for (let n = 0; n < FILES_PER_ROUND; n++) {
        const path = join(workspace.inbox, `round ${round} mix ${n}.wav`);
        const bytes = pcmWav(between(random, 1 * MB, 5 * MB));
        writeFileSync(path, bytes);
        expected.push({ path, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
      for (let f = between(random, 1, 3); f > 0; f--) sandbox.faults.add(randomFault(random));
      const daemon = startDaemon(workspace);
      await daemon.ready();
      await new Promise((resolve) => setTimeout(resolve, between(random, 100, 2500)));
      await daemon.stop('SIGKILL');
      outputs.push(daemon.output);
    }

    sandbox.faults.clear();
    const final = startDaemon(workspace);
    await final.ready();
    const paths = new Set(expected.map((file) => file.path));
    await waitUntil(async () => {
      const done = (await listJobs(workspace)).filter((job) => paths.has(job.path) && job.state === 'done');
      return done.length === expected.length;
    }, scaled(60_000, 20 * 60_000), async () => JSON.stringify((await listJobs(workspace)).filter((j) => j.state !== 'done').slice(0, 5)));
    expect(await final.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    outputs.push(final.output);

    const result = audit(workspace, sandbox, expected);
    const leaks = secretLeaks(outputs, workspace);
    const checksPassed = result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && result.integrity === 'ok' && leaks.length === 0;
    report({
      checksPassed,
      scenario: 'kill -9 loop',
      rounds: ROUNDS,
      files: expected.length,
      lost: result.lost,
      duplicated: result.duplicated,
      corrupted: result.corrupted,
      extra: { maxSessionIdsPerFile: result.maxSessionIdsPerVersion, kills: ROUNDS, secretLeaks: leaks.length, seed },
    });
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(leaks).toEqual([]);
  });
});
