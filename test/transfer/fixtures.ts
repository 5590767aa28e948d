import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestFile {
  path: string;
  bytes: Buffer;
  sha256: string;
  md5: string;
}

/** A temp dir for one test file; `cleanup` removes it. */
export async function makeTempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cryomix-put-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeRandomFile(dir: string, name: string, size: number): Promise<TestFile> {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, bytes, ...digests(bytes) };
}

export function digests(bytes: Buffer): { sha256: string; md5: string } {
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    md5: createHash('md5').update(bytes).digest('base64'),
  };
}

/** What Google would return for the bytes it stored. */
export function googHash(bytes: Buffer): string {
  return `crc32c=AAAAAA==, md5=${digests(bytes).md5}`;
}

export const SIGNED_QUERY =
  'X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20240501T120000Z&X-Goog-Expires=900' +
  '&X-Goog-SignedHeaders=content-type%3Bhost&X-Goog-Signature=5ecre7516a7ure';

export function storageXml(code: string, message: string): string {
  return `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}
