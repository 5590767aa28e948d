import type { FileHandle } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import type { FileOperations } from '../files/folderGate.js';
import { PIECE_BYTES, type FileBlocks } from './blockMemory.js';
import { Semaphore } from './semaphore.js';
import type { UploadCounter } from './uploadCounter.js';

/**
 * At most 512 KiB of pieces not yet taken by the socket: storage that
 * answers before taking the body (a refusal) and closes has then read most
 * of what we sent, so its answer reaches us. With 256 KiB writes, on
 * loopback, its close more often came as a reset that discarded the answer
 * unread.
 */
const PIECES_IN_FLIGHT = 8;

/**
 * Writes the file into the request body through its blocks, and ends the
 * request once the file ended at the queued size.
 *
 * A block is read into again only once the hashing thread is done with it
 * and every write of it called back, when the socket is done with its
 * bytes: what was hashed is what is sent. (A read stream allocates a fresh
 * buffer for every read instead, which V8 frees only at a young-generation
 * GC, and it forces one only after 32 MB of them: that was a third of the
 * daemon's peak RSS during an upload.)
 *
 * Resolves true once every byte was handed over and the file proved to end
 * there, false early when the request is over (answered, failed, aborted:
 * the request itself says which). Rejects with the counter's
 * FileChangedError when the file is not the queued version or could not be
 * read, and with the reason a wait for the upload cap ended (the request is
 * over, a stall, shutdown); nothing past the queued size is sent.
 */
export async function sendFile(
  file: FileHandle,
  run: FileOperations,
  request: ClientRequest,
  blocks: FileBlocks,
  counter: UploadCounter,
  onWritten: (bytes: number) => void,
  /** Waits for the upload cap before a piece goes out; undefined when it may go at once. */
  pace?: (bytes: number) => Promise<void> | undefined,
): Promise<boolean> {
  const size = counter.expectedSize;
  const writeSlots = new Semaphore(PIECES_IN_FLIGHT);
  request.once('close', () => {
    blocks.pool.close();
    writeSlots.close();
  });
  const failed = (cause: Error): never => {
    throw counter.fail(`reading it failed: ${cause.message}`, cause);
  };
  let position = 0;
  let written = 0;
  while (position < size) {
    const block = await blocks.pool.take();
    if (block === undefined) return false;
    const { bytesRead } = await blocks.read(file, run, block, Math.min(block.bytes.length, size - position), position).catch(failed);
    if (request.destroyed) return false;
    // It ended early: `end()` says by how much.
    if (bytesRead === 0) break;
    // The block comes back once the hashing thread and each piece's write are done with it.
    let holders = 1 + Math.ceil(bytesRead / PIECE_BYTES);
    const release = () => {
      if (--holders === 0) blocks.pool.give(block);
    };
    counter.add(block.offset, bytesRead, release);
    position += bytesRead;
    for (let start = 0; start < bytesRead; start += PIECE_BYTES) {
      // A free slot is taken without an await: that would cost a promise and a turn of the microtask queue per 64 KiB.
      if (!writeSlots.tryAcquire() && !(await writeSlots.acquire())) return false;
      const piece = start + PIECE_BYTES <= bytesRead ? block.pieces[start / PIECE_BYTES]! : block.bytes.subarray(start, bytesRead);
      const paced = pace?.(piece.length);
      if (paced !== undefined) await paced;
      if (request.destroyed) return false;
      request.write(piece, (error) => {
        // A failed write fails the request, which reports it; this block is not lent again.
        if (error) return;
        written += piece.length;
        onWritten(written);
        writeSlots.release();
        release();
      });
    }
  }
  if (position === size) {
    // Reading past the queued size is what notices a file that grew. Into a byte of its own, not a block: storage may have
    // answered (it has every byte) and the request closed before this read came back, and its outcome still counts.
    const { bytesRead } = await run(() => file.read(Buffer.alloc(1), 0, 1, size)).catch(failed);
    if (bytesRead > 0) throw counter.fail(`it grew beyond the ${size} bytes it had when queued`);
  }
  counter.end();
  if (!request.destroyed) request.end();
  return true;
}
