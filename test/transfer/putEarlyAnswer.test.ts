import { appendFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import type { FileOperations } from '../../src/files/folderGate.js';
import { FileChangedError } from '../../src/transfer/errors.js';
import { putFile, type PutRequest } from '../../src/transfer/put.js';
import { putRequestTo, usePutStorage, writeRandomFile, type TestFile } from './fixtures.js';

/**
 * Storage answers as soon as it has Content-Length bytes, which may be
 * before the read past the end of the file (the one that tells whether it
 * grew) came back. The PUT must still learn how that read ended, and never
 * wait for it past the stall timeout or a shutdown.
 */

const { storage, dir, agent, thread } = usePutStorage('cryomix-put-early-');

/** Smaller than one block: open, stat, one read of the whole file, then the read past its end. */
const SIZE = 300_000;
const READ_PAST_THE_END = 4;

/** Answers 200 once 100 000 bytes of the body arrived, and drains the rest. */
function answerEarly(): Promise<void> {
  return new Promise((answered) => {
    storage.handle((request, response) => {
      let bytes = 0;
      request.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes < 100_000 || response.headersSent) return;
        response.writeHead(200).end();
        answered();
      });
    });
  });
}

/** File operations that hold the `nth` one until `release`: then it runs, or fails as a read from a broken disk would. */
function holding(nth: number) {
  let calls = 0;
  let reached!: () => void;
  let release!: (how: 'run' | 'fail') => void;
  const held = new Promise<'run' | 'fail'>((resolve) => (release = resolve));
  const reachedIt = new Promise<void>((resolve) => (reached = resolve));
  const run: FileOperations = async (operation) => {
    if (++calls !== nth) return operation();
    reached();
    if ((await held) === 'fail') throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', syscall: 'read' });
    return operation();
  };
  return { run, reached: reachedIt, release };
}

const putRequest = (file: TestFile, overrides: Partial<PutRequest>): PutRequest =>
  putRequestTo(storage.origin, file, agent, { hashThread: thread, ...overrides });

describe('a 2xx before the read past the end of the file came back', () => {
  it('fails with the read\'s failure once it fails', { timeout: 15_000 }, async () => {
    const file = await writeRandomFile(dir(), 'slow-end.wav', SIZE);
    const answered = answerEarly();
    const reads = holding(READ_PAST_THE_END);
    const putting = putFile(putRequest(file, { run: reads.run, stallTimeoutMs: 30_000 })).catch((error: unknown) => error);
    await Promise.all([answered, reads.reached]);
    reads.release('fail');
    const error = await putting;
    expect(error).toBeInstanceOf(FileChangedError);
    expect((error as Error).message).toMatch(/reading it failed: EIO/);
  });

  it('fails with FileChangedError when that read finds the file grew', { timeout: 15_000 }, async () => {
    const file = await writeRandomFile(dir(), 'grows-at-end.wav', SIZE);
    const answered = answerEarly();
    const reads = holding(READ_PAST_THE_END);
    const putting = putFile(putRequest(file, { run: reads.run, stallTimeoutMs: 30_000 })).catch((error: unknown) => error);
    await Promise.all([answered, reads.reached]);
    await appendFile(file.path, Buffer.alloc(1000));
    reads.release('run');
    const error = await putting;
    expect(error).toBeInstanceOf(FileChangedError);
    expect((error as Error).message).toMatch(/grew beyond/);
  });

  it('gives up after the stall timeout while that read hangs', { timeout: 15_000 }, async () => {
    const file = await writeRandomFile(dir(), 'hangs-at-end.wav', SIZE);
    void answerEarly();
    const reads = holding(READ_PAST_THE_END);
    try {
      const error = await putFile(putRequest(file, { run: reads.run, stallTimeoutMs: 300 })).catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(TransientError);
      expect((error as Error).message).toMatch(/stalled/);
    } finally {
      reads.release('fail');
    }
  });

  it('gives up at once on shutdown while that read hangs', { timeout: 15_000 }, async () => {
    const file = await writeRandomFile(dir(), 'shutdown-at-end.wav', SIZE);
    const answered = answerEarly();
    const reads = holding(READ_PAST_THE_END);
    const shutdown = new AbortController();
    const reason = new Error('daemon stopping');
    try {
      const putting = putFile(putRequest(file, { run: reads.run, stallTimeoutMs: 30_000, signal: shutdown.signal })).catch((error: unknown) => error);
      await Promise.all([answered, reads.reached]);
      shutdown.abort(reason);
      expect(await putting).toBe(reason);
    } finally {
      reads.release('fail');
    }
  });

  it('succeeds once that read finds the end where it was', { timeout: 15_000 }, async () => {
    const file = await writeRandomFile(dir(), 'ends-late.wav', SIZE);
    const answered = answerEarly();
    const reads = holding(READ_PAST_THE_END);
    const putting = putFile(putRequest(file, { run: reads.run, stallTimeoutMs: 30_000 }));
    await Promise.all([answered, reads.reached]);
    reads.release('run');
    await expect(putting).resolves.toMatchObject({ bytes: SIZE, sha256: file.sha256, md5: file.md5 });
  });
});
