import { createHash } from 'node:crypto';
import { appendFile, readdir, readlink, truncate } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { FileChangedError } from '../../src/transfer/errors.js';
import { HashThread } from '../../src/transfer/hashThread.js';
import { putFile, type PutRequest } from '../../src/transfer/put.js';
import { readBody } from '../cryomix/localServer.js';
import { crashHashThread, googHash, putRequestTo, usePutStorage, SIGNED_QUERY, writeRandomFile, type TestFile } from './fixtures.js';

/**
 * The PUT's hashing happens on a thread of its own, over the very memory the
 * file is read into and sent from: these check what reaches storage against
 * what the PUT says it sent.
 */

const { storage, dir, agent, thread } = usePutStorage('cryomix-put-hashing-');

const putRequest = (file: TestFile, overrides: Partial<PutRequest> = {}): PutRequest =>
  putRequestTo(storage.origin, file, agent, { hashThread: thread, ...overrides });

const headSha256 = (bytes: Buffer) => createHash('sha256').update(bytes.subarray(0, 64 * 1024)).digest('hex');

/** The bodies that arrived, by path. */
function storeWhatArrives(): Map<string, Buffer> {
  const received = new Map<string, Buffer>();
  storage.handle(async (request, response) => {
    const body = await readBody(request);
    received.set(new URL(request.url ?? '', storage.origin).pathname, body);
    response.writeHead(200, { 'x-goog-hash': googHash(body) }).end();
  });
  return received;
}

/**
 * Never answers; `onFirst` runs at the first body bytes, with the request
 * paused. Resolves with the body bytes that arrived once the client gave up.
 */
function countWhatArrives(onFirst: () => Promise<unknown>): Promise<number> {
  return new Promise((resolve) => {
    storage.handle((request: IncomingMessage) => {
      let bytes = 0;
      request.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      request.once('data', () => {
        request.pause();
        void onFirst().then(() => request.resume());
      });
      request.once('close', () => resolve(bytes));
    });
  });
}

const KiB = 1024;
const MiB = 1024 * KiB;

describe('what the PUT hashes is what storage gets', () => {
  it.each([0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 512 * KiB - 1, 512 * KiB, 512 * KiB + 1, MiB - 1, MiB, MiB + 1, 5 * MiB + 3])(
    'for a file of %i bytes, around the read and write boundaries',
    async (size) => {
      const file = await writeRandomFile(dir(), `mix-${size}.wav`, size);
      const received = storeWhatArrives();
      const result = await putFile(putRequest(file));
      expect(received.get('/bucket/uploads/f/mix.wav')?.equals(file.bytes)).toBe(true);
      expect(result).toEqual({ bytes: size, sha256: file.sha256, md5: file.md5, headSha256: headSha256(file.bytes) });
    },
  );

  it('hashes PUTs that run at once each on their own', async () => {
    const files = await Promise.all([3 * MiB + 5, 2 * MiB, 700 * KiB].map((size, index) => writeRandomFile(dir(), `together-${index}.wav`, size)));
    const received = storeWhatArrives();
    const results = await Promise.all(
      files.map((file, index) => putFile(putRequest(file, { url: new URL(`${storage.origin}/bucket/uploads/f/together-${index}.wav?${SIGNED_QUERY}`) }))),
    );
    results.forEach((result, index) => {
      const file = files[index]!;
      expect(received.get(`/bucket/uploads/f/together-${index}.wav`)?.equals(file.bytes)).toBe(true);
      expect(result).toEqual({ bytes: file.bytes.length, sha256: file.sha256, md5: file.md5, headSha256: headSha256(file.bytes) });
    });
  });
});

describe('a file that changes during the PUT', () => {
  it.each([
    ['grows', (path: string) => appendFile(path, Buffer.alloc(8 * MiB)), /grew beyond/],
    ['shrinks', (path: string) => truncate(path, 6 * MiB), /yielded \d+ bytes, expected 12582912/],
  ])('fails with FileChangedError when it %s, having sent nothing past the queued size', async (_name, change, why) => {
    const file = await writeRandomFile(dir(), 'changing.wav', 12 * MiB);
    const arrived = countWhatArrives(() => change(file.path));
    const error = await putFile(putRequest(file)).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FileChangedError);
    expect((error as Error).message).toMatch(why);
    expect(await arrived).toBeLessThanOrEqual(file.bytes.length);
  });
});

describe('the hashing thread', () => {
  it('dying mid-PUT fails it with a TransientError, and the next PUT gets a fresh thread', async () => {
    const file = await writeRandomFile(dir(), 'interrupted.wav', 16 * MiB);
    void countWhatArrives(() => crashHashThread(thread));
    const error = await putFile(putRequest(file)).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/hashing thread stopped/);

    storeWhatArrives();
    await expect(putFile(putRequest(file))).resolves.toMatchObject({ sha256: file.sha256, md5: file.md5 });
    expect(thread.running).toBe(true);
  });
});

/** Descriptors of this process open on `path` (Linux). */
async function descriptorsOf(path: string): Promise<number> {
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return links.filter((target) => target === path).length;
}

describe('a hashing stream that cannot be opened', () => {
  it('fails the PUT before anything is sent, and leaves no descriptor of the file open', async () => {
    const file = await writeRandomFile(dir(), 'no-stream.wav', 100_000);
    const broken = new (class extends HashThread {
      override open(): never {
        throw new Error('no hashing thread to be had');
      }
    })();
    const before = storage.connections();
    await expect(putFile(putRequest(file, { hashThread: broken }))).rejects.toThrow('no hashing thread to be had');
    expect(await descriptorsOf(file.path)).toBe(0);
    expect(storage.connections()).toBe(before);
  });
});
