import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import type { HashSpec } from '../../src/transfer/hashProtocol.js';
import { afterAll } from 'vitest';
import { HashThread } from '../../src/transfer/hashThread.js';
import type { PutRequest } from '../../src/transfer/put.js';
import { join } from 'node:path';
import { useLocalServer } from '../helpers/servers.js';
import { useSharedTempDir } from '../helpers/tempDir.js';

export interface TestFile {
  path: string;
  bytes: Buffer;
  sha256: string;
  md5: string;
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

/**
 * A connection pool like Node's global agent, which the daemon's PUTs use:
 * keep-alive, so a request never asks storage to close the connection after
 * its answer (and a server that answers early keeps draining the body).
 */
export function storageAgent(): Agent {
  return new Agent({ keepAlive: true });
}

/** What the PUT tests of one file share: storage on loopback, a directory, a keep-alive agent and a hashing thread of their own, all closed after them. */
export function usePutStorage(prefix: string) {
  const storage = useLocalServer();
  const dir = useSharedTempDir(prefix);
  const agent = storageAgent();
  const thread = new HashThread();
  afterAll(async () => {
    agent.destroy();
    await thread.terminate();
  });
  return { storage, dir, agent, thread };
}

/** A PUT of `file` to a signed-looking URL on `origin`; tests override what they exercise. */
export function putRequestTo(origin: string, file: TestFile, agent: Agent, overrides: Partial<PutRequest> = {}): PutRequest {
  return {
    url: new URL(`${origin}/bucket/uploads/f/mix.wav?${SIGNED_QUERY}`),
    path: file.path,
    size: file.bytes.length,
    contentType: 'audio/wav',
    stallTimeoutMs: 5_000,
    agent,
    ...overrides,
  };
}

/**
 * Makes the hashing thread really die, as a bug on the main thread would: a
 * stream asking for a hash node:crypto does not know makes it throw. Resolves
 * once the streams it had were failed.
 */
export async function crashHashThread(thread: HashThread): Promise<void> {
  const poisoned = thread.open(new SharedArrayBuffer(16), [{ algorithm: 'no-such-hash' as HashSpec['algorithm'], encoding: 'hex' }]);
  await new Promise((failed) => poisoned.signal.addEventListener('abort', failed, { once: true }));
  poisoned.close();
}
