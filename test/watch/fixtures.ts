import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export * from '../helpers/audio.js';

/** A fresh directory per test, removed afterwards. */
export async function makeTmpDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cryomix-watch-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
