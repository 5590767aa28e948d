import { open } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { FileOperations } from '../../src/files/folderGate.js';
import { BlockMemory, MAX_MEMORY_BYTES, memoryBytesFor, SPARE_LIMIT_BYTES } from '../../src/transfer/blockMemory.js';
import { useSharedTempDir } from '../helpers/tempDir.js';
import { writeRandomFile } from './fixtures.js';

const dir = useSharedTempDir('cryomix-block-memory-');

describe('memory for a file', () => {
  it.each([
    [0, 4096],
    [4096, 4096],
    [4097, 8192],
    [600_000, 1024 * 1024],
    [2 * 1024 * 1024, MAX_MEMORY_BYTES],
    [10 * 1024 ** 3, MAX_MEMORY_BYTES],
  ])('of %i bytes is %i bytes', (size, bytes) => {
    expect(memoryBytesFor(size)).toBe(bytes);
    const memory = new BlockMemory();
    const blocks = memory.lend(size);
    expect(blocks.memory.byteLength).toBe(bytes);
    expect(memory.stats).toEqual({ inUseBytes: bytes, spareBytes: 0, allocations: 1 });
    blocks.release();
    expect(memory.stats).toEqual({ inUseBytes: 0, spareBytes: bytes, allocations: 1 });
    expect(memory.lend(size).memory).toBe(blocks.memory);
  });

  it('keeps at most SPARE_LIMIT_BYTES spare, one of each size before two of any', () => {
    const memory = new BlockMemory();
    const lent = [...Array.from({ length: 8 }, () => memory.lend(MAX_MEMORY_BYTES)), memory.lend(4096)];
    for (const blocks of lent) blocks.release();
    expect(memory.stats.spareBytes).toBeLessThanOrEqual(SPARE_LIMIT_BYTES);
    const small = memory.lend(4096);
    expect(small.memory).toBe(lent[8]!.memory);
  });
});

describe('a read into the memory', () => {
  // One its caller was let go of while it ran: see putMemory.test.ts, where the kernel holds a PUT's read.
  it('that its gate refused before starting it never starts, and does not hold the memory', async () => {
    const file = await writeRandomFile(dir(), 'refused.wav', 10_000);
    const handle = await open(file.path);
    try {
      const memory = new BlockMemory();
      const blocks = memory.lend(10_000);
      let late: (() => Promise<unknown>) | undefined;
      const run: FileOperations = (operation) => {
        late = operation;
        return Promise.reject(new Error('stopping'));
      };
      await expect(blocks.read(handle, run, (await blocks.pool.take())!, 10_000, 0)).rejects.toThrow('stopping');
      blocks.release();
      expect(memory.stats).toMatchObject({ inUseBytes: 0, spareBytes: 16384 });
      await expect(late!()).rejects.toThrow(/given up on before it started/);
    } finally {
      await handle.close();
    }
  });
});
