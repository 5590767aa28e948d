import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FileChangedError } from './errors.js';

/**
 * Sits between the file and the socket: hashes (SHA-256 and MD5) and counts
 * the very bytes that are sent, in the one read of the file (SPEC guarantee
 * 3). It refuses to pass a byte beyond `expectedSize` and fails at the end if
 * fewer came, so a file that changes under us never reaches storage as a
 * silently different object.
 */
export class HashingCounter extends Transform {
  #bytes = 0;
  readonly #sha256 = createHash('sha256');
  readonly #md5 = createHash('md5');
  /** Set when the file did not match `expectedSize`; the PUT reports this rather than undici's abort. */
  failure: FileChangedError | undefined;

  constructor(
    private readonly path: string,
    private readonly expectedSize: number,
    private readonly onBytes: (bytes: number) => void,
  ) {
    super();
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.expectedSize) {
      callback(this.fail(`it grew beyond the ${this.expectedSize} bytes it had when queued`));
      return;
    }
    this.#sha256.update(chunk);
    this.#md5.update(chunk);
    this.onBytes(this.#bytes);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#bytes !== this.expectedSize) {
      callback(this.fail(`it yielded ${this.#bytes} bytes, expected ${this.expectedSize}`));
      return;
    }
    callback();
  }

  /** Records why the file does not match, and returns that error for the stream to fail with. */
  fail(problem: string, cause?: unknown): FileChangedError {
    this.failure ??= new FileChangedError(this.path, problem, { cause });
    return this.failure;
  }

  /** Only meaningful once all bytes passed; a hash may be finalised once. */
  digests(): { sha256: string; md5: string } {
    return { sha256: this.#sha256.digest('hex'), md5: this.#md5.digest('base64') };
  }
}
