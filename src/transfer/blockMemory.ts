import type { FileHandle, FileReadResult } from 'node:fs/promises';
import type { FileOperations } from '../files/folderGate.js';
import { Pool } from './pool.js';

/**
 * A file is read in blocks of at most 512 KiB: one read syscall and one
 * message to the hashing thread for eight pieces written. At most four per
 * upload: one is read into while others are hashed and written.
 */
export const BLOCK_BYTES = 512 * 1024;
const MAX_BLOCKS = 4;

/**
 * A file's memory is its size rounded up to a power of two, from a page to
 * MAX_BLOCKS blocks: a 4 KiB file takes 4 KiB, not 2 MiB, and a handful of
 * sizes lets later uploads reuse what earlier ones gave back.
 */
const MIN_MEMORY_BYTES = 4 * 1024;
export const MAX_MEMORY_BYTES = MAX_BLOCKS * BLOCK_BYTES;

/**
 * Memory kept for later uploads, in all: that of four large files (as many
 * as uploads usually run at once), or of many more small ones. Beyond it the
 * longest unused of a size kept twice or more is dropped; uploads in flight
 * hold what they use whatever their number.
 */
export const SPARE_LIMIT_BYTES = 4 * MAX_MEMORY_BYTES;

/**
 * Each block goes to the request in pieces of 64 KiB, as a read stream
 * reads (see sendFile for why no larger).
 */
export const PIECE_BYTES = 64 * 1024;

export interface Block {
  /** Where it starts in the memory. */
  offset: number;
  bytes: Buffer;
  /** Its whole pieces, made once with the memory: a piece is written many times over. */
  pieces: Buffer[];
}

/** Memory and the views on it, made once and reused with it. */
interface Memory {
  buffer: SharedArrayBuffer;
  blocks: Block[];
}

export interface MemoryStats {
  /** Lent to uploads, including those that ended while a read into theirs was still in the kernel. */
  inUseBytes: number;
  /** Given back and kept for later uploads; at most SPARE_LIMIT_BYTES. */
  spareBytes: number;
  /** SharedArrayBuffers made so far: reuse keeps this far below the number of uploads. */
  allocations: number;
}

/** How much memory reading a file of `fileSize` bytes takes. */
export function memoryBytesFor(fileSize: number): number {
  let bytes = MIN_MEMORY_BYTES;
  while (bytes < fileSize && bytes < MAX_MEMORY_BYTES) bytes *= 2;
  return bytes;
}

/**
 * The memory uploads read their files into, shared with the hashing thread
 * (what it hashes is what is sent). Memory given back is kept for later
 * uploads, up to SPARE_LIMIT_BYTES: a SharedArrayBuffer is freed only once
 * both threads collected it, and the hashing thread allocates so little that
 * its collector seldom runs, so fresh memory for every upload would pile up.
 *
 * Memory is lent again only once no read into it can still be in the kernel
 * (see FileBlocks.read). Whatever the hashing thread still hashes of it for a
 * closed stream is for nobody, and the next stream's updates come after; a
 * request that was done with is finished or destroyed, and a destroyed
 * socket sends nothing more.
 */
export class BlockMemory {
  #inUseBytes = 0;
  /** Longest unused first. */
  readonly #spare: Memory[] = [];
  #spareBytes = 0;
  #allocations = 0;

  get stats(): MemoryStats {
    return { inUseBytes: this.#inUseBytes, spareBytes: this.#spareBytes, allocations: this.#allocations };
  }

  /** Blocks to read a file of `fileSize` bytes through; they must be released. */
  lend(fileSize: number): FileBlocks {
    const bytes = memoryBytesFor(fileSize);
    const index = this.#spare.findLastIndex((memory) => memory.buffer.byteLength === bytes);
    let memory: Memory;
    if (index === -1) {
      memory = cut(new SharedArrayBuffer(bytes));
      this.#allocations++;
    } else {
      memory = this.#spare.splice(index, 1)[0]!;
      this.#spareBytes -= bytes;
    }
    this.#inUseBytes += bytes;
    return new FileBlocks(memory, () => this.#giveBack(memory));
  }

  #giveBack(memory: Memory): void {
    const bytes = memory.buffer.byteLength;
    this.#inUseBytes -= bytes;
    this.#spare.push(memory);
    this.#spareBytes += bytes;
    while (this.#spareBytes > SPARE_LIMIT_BYTES) {
      const dropped = this.#spare.splice(this.#leastNeeded(), 1)[0]!;
      this.#spareBytes -= dropped.buffer.byteLength;
    }
  }

  /** The longest unused of a size that has another spare, so that every size keeps one; else the longest unused. */
  #leastNeeded(): number {
    const index = this.#spare.findIndex((memory, at) => this.#spare.some((other, at2) => at2 !== at && other.buffer.byteLength === memory.buffer.byteLength));
    return index === -1 ? 0 : index;
  }
}

/** The memory every upload of this process reads through. */
export const sharedBlockMemory = new BlockMemory();

function cut(buffer: SharedArrayBuffer): Memory {
  const blockBytes = Math.min(BLOCK_BYTES, buffer.byteLength);
  const blocks = Array.from({ length: buffer.byteLength / blockBytes }, (_, index): Block => {
    const offset = index * blockBytes;
    const bytes = Buffer.from(buffer, offset, blockBytes);
    const pieces = Array.from({ length: Math.floor(blockBytes / PIECE_BYTES) }, (_, piece) => bytes.subarray(piece * PIECE_BYTES, (piece + 1) * PIECE_BYTES));
    return { offset, bytes, pieces };
  });
  return { buffer, blocks };
}

/** One upload's blocks: lent by BlockMemory, given back by `release()` once nothing can write into them any more. */
export class FileBlocks {
  /** Shared with the hashing thread. */
  readonly memory: SharedArrayBuffer;
  /** Free blocks: one is taken to read into, and given back once hashed and written. */
  readonly pool: Pool<Block>;
  readonly #giveBack: () => void;
  /** Reads handed to the file operations and not yet known to be out of the kernel. */
  #reads = 0;
  #released = false;
  #givenBack = false;

  constructor(memory: Memory, giveBack: () => void) {
    this.memory = memory.buffer;
    this.pool = new Pool([...memory.blocks]);
    this.#giveBack = giveBack;
  }

  /**
   * Reads `length` bytes at `position` into `block`, through `run`. The
   * caller may be told the read failed (a share that hangs: the folder's gate
   * lets go of it) while the kernel still holds it and will write into the
   * block whenever the share answers; so the read counts until it settled
   * itself. One that `run` had not started when it answered never starts.
   */
  read(file: FileHandle, run: FileOperations, block: Block, length: number, position: number): Promise<FileReadResult<Buffer>> {
    // A bug, not a file problem: the memory may be another upload's by now.
    if (this.#released) return Promise.reject(new Error('a read into blocks that were released'));
    let state: 'waiting' | 'started' | 'abandoned' = 'waiting';
    this.#reads++;
    return run(() => {
      if (state === 'abandoned') return Promise.reject(new Error('a read that was given up on before it started'));
      state = 'started';
      const reading = file.read(block.bytes, 0, length, position);
      reading.then(this.#readSettled, this.#readSettled);
      return reading;
    }).finally(() => {
      if (state !== 'waiting') return;
      state = 'abandoned';
      this.#readSettled();
    });
  }

  /** The upload is over: the memory goes back once no read into it is in the kernel, and never if one never comes back. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#giveBackIfIdle();
  }

  readonly #readSettled = (): void => {
    this.#reads--;
    this.#giveBackIfIdle();
  };

  #giveBackIfIdle(): void {
    if (!this.#released || this.#reads > 0 || this.#givenBack) return;
    this.#givenBack = true;
    this.#giveBack();
  }
}
