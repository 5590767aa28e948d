import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** A directory that outlives one test (for beforeAll); `cleanup` removes it. */
export async function makeTempDir(prefix = 'cryomix-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Each call makes a fresh directory; all of a test's are removed after it. */
export function useTempDir(prefix = 'cryomix-test-'): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/** Like useTempDir, but every call within one test returns that test's same directory. */
export function useTestDir(prefix = 'cryomix-test-'): () => string {
  const fresh = useTempDir(prefix);
  let current: string | undefined;
  afterEach(() => {
    current = undefined;
  });
  return () => (current ??= fresh());
}

/** One directory for all of a file's tests: made before them, removed after. */
export function useSharedTempDir(prefix = 'cryomix-test-'): () => string {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}
