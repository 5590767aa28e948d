import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FolderGate } from '../../src/files/folderGate.js';
import { BlockMemory, memoryBytesFor, SPARE_LIMIT_BYTES } from '../../src/transfer/blockMemory.js';
import { FileChangedError } from '../../src/transfer/errors.js';
import { putFile, type PutRequest } from '../../src/transfer/put.js';
import { readBody } from '../cryomix/localServer.js';
import { googHash, putRequestTo, usePutStorage, SIGNED_QUERY, writeRandomFile, type TestFile } from './fixtures.js';

/**
 * The memory a PUT reads its file into is lent again to later PUTs: only
 * once nothing can write into it any more, and no more of it than a file
 * needs, however many PUTs run.
 */

const { storage, dir, agent, thread } = usePutStorage('cryomix-put-memory-');

const putRequest = (file: TestFile, name: string, overrides: Partial<PutRequest>): PutRequest =>
  putRequestTo(storage.origin, file, agent, { hashThread: thread, url: new URL(`${storage.origin}/bucket/uploads/f/${name}?${SIGNED_QUERY}`), ...overrides });

/** The bodies that arrived, by object name. */
function storeWhatArrives(): Map<string, Buffer> {
  const received = new Map<string, Buffer>();
  storage.handle(async (request, response) => {
    const body = await readBody(request);
    received.set(new URL(request.url ?? '', storage.origin).pathname.split('/').pop()!, body);
    response.writeHead(200, { 'x-goog-hash': googHash(body) }).end();
  });
  return received;
}

/** FileHandle's own class: what a read of the kernel's goes through. */
async function fileHandlePrototype(): Promise<FileHandle> {
  const handle = await open(import.meta.filename);
  await handle.close();
  return Object.getPrototypeOf(handle) as FileHandle;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('memory a read was given up on', () => {
  it('is not lent to the next PUT while that read can still write into it', { timeout: 15_000 }, async () => {
    const first = await writeRandomFile(dir(), 'first.wav', 300_000);
    const second = await writeRandomFile(dir(), 'second.wav', 300_000);
    const received = storeWhatArrives();
    const memory = new BlockMemory();

    // A share that hangs: the kernel holds the first PUT's read of its file, and writes what it read only when let go.
    const prototype = await fileHandlePrototype();
    const read = prototype.read as (this: FileHandle, ...args: unknown[]) => Promise<unknown>;
    let kernelLetsGo: (() => Promise<unknown>) | undefined;
    let hung = false;
    vi.spyOn(prototype, 'read').mockImplementation(function (this: FileHandle, ...args: unknown[]): Promise<unknown> {
      const into = args[0] as Buffer;
      if (!(into.buffer instanceof SharedArrayBuffer)) return read.apply(this, args);
      if (!hung) {
        hung = true;
        // What it reads now lands in the PUT's memory only later (a closed descriptor does not stop a read under way).
        const [, offset, length, position] = args as [Buffer, number, number, number];
        const reading = read.call(this, Buffer.alloc(length), 0, length, position) as Promise<{ bytesRead: number; buffer: Buffer }>;
        return new Promise<unknown>((resolve, reject) => {
          kernelLetsGo = () =>
            reading.then(({ bytesRead, buffer }) => {
              buffer.copy(into, offset, 0, bytesRead);
              resolve({ bytesRead, buffer: into });
            }, reject);
        });
      }
      // The second PUT's read; the first one's comes back from the kernel before this one's block is hashed and sent.
      return read.apply(this, args).then(async (result) => {
        await kernelLetsGo?.();
        kernelLetsGo = undefined;
        return result;
      });
    } as typeof prototype.read);

    const gate = new FolderGate({ folder: dir(), maxInFlight: 4, timeoutMs: 100, onChange: () => undefined });
    const givenUp = await putFile(putRequest(first, 'first.wav', { memory, run: (operation) => gate.run(operation) })).catch((error: unknown) => error);
    expect(givenUp).toBeInstanceOf(FileChangedError);
    expect(memory.stats.inUseBytes).toBeGreaterThan(0);

    const result = await putFile(putRequest(second, 'second.wav', { memory }));
    expect(received.get('second.wav')?.equals(second.bytes)).toBe(true);
    expect(result).toMatchObject({ sha256: second.sha256, md5: second.md5 });
    // The first PUT's read came back: its memory is free again.
    expect(kernelLetsGo).toBeUndefined();
    expect(memory.stats.inUseBytes).toBe(0);
  });
});

/** Answers each PUT with the MD5 of what arrived, keeping none of it. */
function answerWithMd5(): void {
  storage.handle((request, response) => {
    const md5 = createHash('md5');
    request.on('data', (chunk: Buffer) => md5.update(chunk));
    request.once('end', () => response.writeHead(200, { 'x-goog-hash': `md5=${md5.digest('base64')}` }).end());
  });
}

describe('many small files', () => {
  it('each take memory of their size, reused across thousands of PUTs, whether they run at once or one after another', { timeout: 60_000 }, async () => {
    const sizes = [0, 1, 4096, 4097, 20_000, 65_536, 100_000, 250_000, 524_288, 600_000];
    const files = await Promise.all(sizes.map((size) => writeRandomFile(dir(), `small-${size}.wav`, size)));
    answerWithMd5();
    const memory = new BlockMemory();
    const largest = memoryBytesFor(Math.max(...sizes));
    const CONCURRENCY = 32;
    const PUTS = 3000;
    let next = 0;
    let highest = 0;
    const putOne = async (index: number) => {
      const file = files[index % files.length]!;
      const result = await putFile(putRequest(file, `small-${index}.wav`, { memory }));
      expect(result.md5).toBe(file.md5);
      const { inUseBytes, spareBytes } = memory.stats;
      highest = Math.max(highest, inUseBytes);
      expect(inUseBytes).toBeLessThanOrEqual(CONCURRENCY * largest);
      expect(spareBytes).toBeLessThanOrEqual(SPARE_LIMIT_BYTES);
    };
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < PUTS) await putOne(next++);
      }),
    );
    expect(highest).toBeGreaterThan(0);
    expect(memory.stats.inUseBytes).toBe(0);
    // Fresh memory for a PUT only when none of its size was spare: at most what ran at once, of each size.
    expect(memory.stats.allocations).toBeLessThanOrEqual(CONCURRENCY * new Set(sizes.map(memoryBytesFor)).size);

    const allocated = memory.stats.allocations;
    for (let index = 0; index < 500; index++) await putOne(index);
    // One after another, every size finds one of its own spare.
    expect(memory.stats.allocations).toBe(allocated);
    expect(memory.stats.inUseBytes).toBe(0);
  });
});
