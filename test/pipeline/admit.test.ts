import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { admit } from '../../src/pipeline/admit.js';
import { openDatabase } from '../../src/store/db.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import { pcmWav } from '../helpers/audio.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-admit-');
const limits = { minBytes: 1_000, maxBytes: 1_000_000 };

/** A waiting row for a file holding `bytes`. */
async function waitingFile(bytes: Buffer) {
  const dir = tempDir();
  const store = new SqliteJobStore(openDatabase(join(dir, 'state.db')));
  const path = join(dir, 'mix.wav');
  writeFileSync(path, bytes);
  const { size, mtimeMs } = statSync(path);
  return { store, job: await store.createVersion({ folder: dir, path, size, mtimeMs }), fileStat: { size, mtimeMs } };
}

describe('admit', () => {
  it('queues a complete file, rejects one out of the size limits with the numbers, and leaves a placeholder waiting', async () => {
    const complete = await waitingFile(pcmWav(10_000));
    expect(await admit(complete.store, complete.job, complete.fileStat, limits)).toEqual({ outcome: 'queued' });
    expect((await complete.store.get(complete.job.id)).state).toBe('queued');

    const big = await waitingFile(pcmWav(2_000_000));
    expect(await admit(big.store, big.job, big.fileStat, limits)).toEqual({ outcome: 'rejected', reason: expect.stringMatching(/^too large: 2000044 bytes, the maximum is 1000000/) });

    const placeholder = pcmWav(10_000);
    placeholder.writeUInt32LE(0, 4);
    placeholder.writeUInt32LE(0, 40);
    const unfinished = await waitingFile(placeholder);
    expect(await admit(unfinished.store, unfinished.job, unfinished.fileStat, limits)).toMatchObject({ outcome: 'incomplete' });
    expect((await unfinished.store.get(unfinished.job.id)).state).toBe('waiting');
  });

  it('answers taken, without touching the row, when another process admitted the file first', async () => {
    for (const bytes of [pcmWav(10_000), pcmWav(2_000_000)]) {
      const { store, job, fileStat } = await waitingFile(bytes);
      // The daemon's intake and `upload FILE` looked at the same waiting row; the other one filed first.
      await store.transition(job.id, 'queued');
      expect(await admit(store, job, fileStat, limits)).toEqual({ outcome: 'taken' });
      expect((await store.get(job.id)).state).toBe('queued');
    }
  });
});
