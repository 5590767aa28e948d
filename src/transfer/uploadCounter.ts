import { TransientError } from '../errors.js';
import { FileChangedError, HashProtocolError } from './errors.js';
import { HEAD_BYTES } from './hash.js';
import type { HashStream, HashThread } from './hashThread.js';
import type { PutResult } from './put.js';

export type UploadDigests = Pick<PutResult, 'sha256' | 'md5' | 'headSha256'>;

/**
 * Sees every block between the file and the socket: counts the very bytes
 * that are sent and has the hashing thread hash them (SHA-256, MD5, and
 * SHA-256 of the head), in the one read of the file (SPEC guarantee 3). It
 * refuses a block that would go beyond `expectedSize` and `end()` fails if
 * fewer came, so a file that changes under us never reaches storage as a
 * silently different object.
 */
export class UploadCounter {
  #bytes = 0;
  readonly #stream: HashStream;
  #failure: FileChangedError | undefined;

  /** Hashes ranges of its `memory` (`memoryBytes` long), where the file's blocks are to be read into. Must be closed. */
  constructor(
    private readonly path: string,
    private readonly expectedSize: number,
    thread: HashThread,
    memoryBytes: number,
  ) {
    this.#stream = thread.open(memoryBytes, [
      { algorithm: 'sha256', encoding: 'hex' },
      { algorithm: 'md5', encoding: 'base64' },
      { algorithm: 'sha256', encoding: 'hex', firstBytes: HEAD_BYTES },
    ]);
  }

  /** Shared with the hashing thread; not to be touched once closed. */
  get memory(): SharedArrayBuffer {
    return this.#stream.memory;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Aborts, with a TransientError, when the hashing thread stopped mid-transfer. */
  get signal(): AbortSignal {
    return this.#stream.signal;
  }

  /**
   * Why the bytes could not go out as read: the file did not match the
   * queued version or could not be read (FileChangedError), or the hashing
   * thread stopped (TransientError). The PUT reports this rather than the
   * aborted request.
   */
  get failure(): FileChangedError | TransientError | undefined {
    return this.#failure ?? (this.#stream.signal.aborted ? (this.#stream.signal.reason as TransientError) : undefined);
  }

  /**
   * Called before any of the block's bytes are sent; throws, and sends
   * nothing, if the file grew. `hashed` runs once the hashing thread no
   * longer reads them.
   */
  add(offset: number, length: number, hashed: () => void): void {
    if (this.#bytes + length > this.expectedSize) {
      throw this.fail(`it grew beyond the ${this.expectedSize} bytes it had when queued`);
    }
    this.#bytes += length;
    this.#stream.update(offset, length, hashed);
  }

  /** The file ended: throws if it yielded fewer bytes than when it was queued. */
  end(): void {
    if (this.#bytes !== this.expectedSize) throw this.fail(`it yielded ${this.#bytes} bytes, expected ${this.expectedSize}`);
    this.#stream.finish();
  }

  /** Records why the file does not match, and returns that error to throw. */
  fail(problem: string, cause?: unknown): FileChangedError {
    this.#failure ??= new FileChangedError(this.path, problem, { cause });
    return this.#failure;
  }

  /** Only once all bytes passed (`end()`); rejects with a TransientError if the hashing thread stopped. */
  async digests(): Promise<UploadDigests> {
    const [sha256, md5, headSha256] = await this.#stream.digests();
    if (sha256 === undefined || md5 === undefined || headSha256 === undefined) throw new HashProtocolError('the hashing thread answered fewer digests than asked');
    return { sha256, md5, headSha256 };
  }

  /** The upload is over, done or abandoned: the hashing thread drops what it still holds of it. */
  close(): void {
    this.#stream.close();
  }
}
