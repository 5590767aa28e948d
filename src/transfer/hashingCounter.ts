import { createHash } from 'node:crypto';
import { FileChangedError } from './errors.js';
import { HEAD_BYTES } from './hash.js';

/**
 * Sees every chunk between the file and the socket: hashes (SHA-256 and MD5)
 * and counts the very bytes that are sent, in the one read of the file (SPEC
 * guarantee 3). It refuses a chunk that would go beyond `expectedSize` and
 * `end()` fails if fewer came, so a file that changes under us never reaches
 * storage as a silently different object.
 */
export class HashingCounter {
  #bytes = 0;
  readonly #sha256 = createHash('sha256');
  readonly #md5 = createHash('md5');
  readonly #head = createHash('sha256');
  /** Set when the file did not match `expectedSize` or could not be read; the PUT reports this rather than the aborted request. */
  failure: FileChangedError | undefined;

  constructor(
    private readonly path: string,
    private readonly expectedSize: number,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  /** Called before the chunk is sent; throws, and sends nothing, if the file grew. */
  add(chunk: Buffer): void {
    if (this.#bytes + chunk.length > this.expectedSize) {
      throw this.fail(`it grew beyond the ${this.expectedSize} bytes it had when queued`);
    }
    if (this.#bytes < HEAD_BYTES) this.#head.update(chunk.subarray(0, HEAD_BYTES - this.#bytes));
    this.#bytes += chunk.length;
    this.#sha256.update(chunk);
    this.#md5.update(chunk);
  }

  /** The file ended: throws if it yielded fewer bytes than when it was queued. */
  end(): void {
    if (this.#bytes !== this.expectedSize) throw this.fail(`it yielded ${this.#bytes} bytes, expected ${this.expectedSize}`);
  }

  /** Records why the file does not match, and returns that error to throw. */
  fail(problem: string, cause?: unknown): FileChangedError {
    this.failure ??= new FileChangedError(this.path, problem, { cause });
    return this.failure;
  }

  /** Only meaningful once all bytes passed; a hash may be finalised once. */
  digests(): { sha256: string; md5: string; headSha256: string } {
    return { sha256: this.#sha256.digest('hex'), md5: this.#md5.digest('base64'), headSha256: this.#head.digest('hex') };
  }
}
