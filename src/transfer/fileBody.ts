import type { FileHandle } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import type { FileOperations } from '../files/folderGate.js';
import type { HashingCounter } from './hashingCounter.js';

/**
 * 512 KiB in all, whatever the file's size: one buffer is read into while the
 * others are being written. 64 KiB, as a read stream reads: storage that
 * answers before taking the body (a refusal) and closes has then read most
 * of what we sent, so its answer reaches us. With 256 KiB, on loopback, its
 * close more often came as a reset that discarded the answer unread.
 */
const CHUNK_BYTES = 64 * 1024;
const CHUNKS = 8;

/**
 * Writes the file into the request body through a fixed set of buffers, and
 * ends the request once the file ended at the queued size.
 *
 * A buffer is read into again only once its write called back, when the
 * socket is done with its bytes: what was hashed is what is sent. (A read stream allocates a fresh buffer for every read instead,
 * which V8 frees only at a young-generation GC, and it forces one only after
 * 32 MB of them: that was a third of the daemon's peak RSS during an upload.)
 *
 * Resolves once every byte was handed over, or early when the request is
 * over (answered, failed, aborted: the request itself says which). Rejects
 * with the counter's FileChangedError when the file is not the queued
 * version or could not be read; nothing past the queued size is sent.
 */
export async function sendFile(
  file: FileHandle,
  run: FileOperations,
  request: ClientRequest,
  counter: HashingCounter,
  onWritten: (bytes: number) => void,
  /** Waits for the upload cap before a chunk goes out; undefined when it may go at once. */
  pace?: (bytes: number) => Promise<void> | undefined,
): Promise<void> {
  const buffers = new BufferPool(CHUNKS, CHUNK_BYTES);
  request.once('close', () => buffers.close());
  let position = 0;
  let written = 0;
  for (;;) {
    const buffer = await buffers.take();
    if (buffer === undefined) return;
    const { bytesRead } = await run(() => file.read(buffer, 0, buffer.length, position)).catch((cause: Error) => {
      throw counter.fail(`reading it failed: ${cause.message}`, cause);
    });
    if (request.destroyed) return;
    // Reading on to the end of the file, not to the queued size, is what notices a file that grew.
    if (bytesRead === 0) break;
    const chunk = buffer.subarray(0, bytesRead);
    counter.add(chunk);
    position += bytesRead;
    const paced = pace?.(bytesRead);
    if (paced !== undefined) await paced;
    if (request.destroyed) return;
    request.write(chunk, (error) => {
      // A failed write fails the request, which reports it; this buffer is not lent again.
      if (error) return;
      written += chunk.length;
      onWritten(written);
      buffers.give(buffer);
    });
  }
  counter.end();
  request.end();
}

/** Buffers lent to one borrower at a time; `take()` waits for one to come back, and yields undefined once closed. */
class BufferPool {
  readonly #free: Buffer[];
  #waiting: ((buffer: Buffer | undefined) => void) | undefined;
  #closed = false;

  constructor(count: number, size: number) {
    this.#free = Array.from({ length: count }, () => Buffer.allocUnsafeSlow(size));
  }

  take(): Promise<Buffer | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const free = this.#free.pop();
    if (free !== undefined) return Promise.resolve(free);
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  give(buffer: Buffer): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting === undefined) this.#free.push(buffer);
    else waiting(buffer);
  }

  close(): void {
    this.#closed = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(undefined);
  }
}
