import type { TransientError } from '../errors.js';
import { FileChangedError, HashProtocolError } from './errors.js';
import { HEAD_BYTES } from './hash.js';
import type { HashStream, HashThread } from './hashThread.js';
import type { HashSpec } from './hashProtocol.js';
import type { PutResult } from './put.js';

export type UploadDigests = Pick<PutResult, 'sha256' | 'md5' | 'headSha256'>;

/** In UploadDigests' order: SHA-256 (hex), MD5 (base64, as Google reports it), SHA-256 of the head (hex). */
const UPLOAD_HASHES: HashSpec[] = [
  { algorithm: 'sha256', encoding: 'hex' },
  { algorithm: 'md5', encoding: 'base64' },
  { algorithm: 'sha256', encoding: 'hex', firstBytes: HEAD_BYTES },
];

/**
 * Sees every block between the file and the socket: counts the very bytes
 * that are sent and has the hashing thread hash them (SHA-256, MD5, and
 * SHA-256 of the head), in the one read of the file (SPEC guarantee 3). It
 * records why the file is not the queued version (`fail`), and `end()` fails
 * if fewer bytes came than when it was queued, so a file that changes under
 * us never reaches storage as a silently different object.
 */
export class UploadCounter {
  #bytes = 0;
  readonly #stream: HashStream;
  #failure: FileChangedError | undefined;

  /** Has `thread` hash ranges of `memory`, where the file's blocks are read into. Must be closed. */
  constructor(
    private readonly path: string,
    readonly expectedSize: number,
    thread: HashThread,
    memory: SharedArrayBuffer,
  ) {
    this.#stream = thread.open(memory, UPLOAD_HASHES);
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

  /** Called before any of the block's bytes are sent. `hashed` runs once the hashing thread no longer reads them. */
  add(offset: number, length: number, hashed: () => void): void {
    this.#bytes += length;
    this.#stream.update(offset, length, hashed);
  }

  /** The file ended: throws if it yielded other than the bytes it had when queued. */
  end(): void {
    if (this.#bytes !== this.expectedSize) throw this.fail(`it yielded ${this.#bytes} bytes, expected ${this.expectedSize}`);
    this.#stream.finish();
  }

  /** Records why the file does not match, and returns that error to throw. */
  fail(problem: string, cause?: unknown): FileChangedError {
    this.#failure ??= new FileChangedError(this.path, problem, { cause });
    return this.#failure;
  }

  /** Only once `end()` passed; rejects with a TransientError if the hashing thread stopped, with `signal`'s reason once it aborts. */
  async digests(signal: AbortSignal): Promise<UploadDigests> {
    const [sha256, md5, headSha256] = await this.#stream.digests(signal);
    if (sha256 === undefined || md5 === undefined || headSha256 === undefined) throw new HashProtocolError(`${UPLOAD_HASHES.length} digests asked, fewer came`);
    return { sha256, md5, headSha256 };
  }

  /** The upload is over, done or abandoned: the hashing thread drops what it still holds of it. */
  close(): void {
    this.#stream.close();
  }
}
