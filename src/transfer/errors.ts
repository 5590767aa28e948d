import { CryomixWatchError } from '../errors.js';

/** Which way the bytes were going: a PUT of a mix, or a GET of a result. */
export type Transfer = 'upload' | 'download';

/**
 * Storage refused the PUT or GET for good (non-2xx other than 408, 429 and
 * 5xx, or a redirect, which is never followed). The pipeline decides what a
 * code means: 400 `ExpiredToken` asks for a fresh URL, 403 earns one fresh
 * URL then `failed` (SPEC guarantee 5), so `storageCode` is kept verbatim.
 */
export class StorageError extends CryomixWatchError {
  readonly statusCode: number;
  /** The XML `<Code>`, e.g. `ExpiredToken`, `SignatureDoesNotMatch`; undefined when the body had none. */
  readonly storageCode: string | undefined;
  readonly storageMessage: string;
  readonly transfer: Transfer;

  constructor(statusCode: number, storageCode: string | undefined, storageMessage: string, transfer: Transfer = 'upload') {
    const what = storageCode === undefined ? `${statusCode}` : `${statusCode} ${storageCode}`;
    super('STORAGE_REFUSED', `storage refused the ${transfer} (${what}): ${storageMessage}`);
    this.statusCode = statusCode;
    this.storageCode = storageCode;
    this.storageMessage = storageMessage;
    this.transfer = transfer;
  }
}

/** Storage stored other bytes than we sent (its `x-goog-hash` MD5 differs): upload again. */
export class ChecksumMismatchError extends CryomixWatchError {
  readonly expectedMd5: string;
  readonly storedMd5: string;

  constructor(expectedMd5: string, storedMd5: string) {
    super('CHECKSUM_MISMATCH', `storage stored different bytes: MD5 ${storedMd5}, we sent ${expectedMd5}; the upload will be repeated`);
    this.expectedMd5 = expectedMd5;
    this.storedMd5 = storedMd5;
  }
}

/**
 * The file did not read back as the version that was queued: another size,
 * or it vanished or became unreadable mid-upload. The attempt is dropped and
 * the file settles again as a new version (SPEC "What is a file to upload").
 */
export class FileChangedError extends CryomixWatchError {
  readonly path: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('FILE_CHANGED', `${path} changed during the upload (${problem}); it will be picked up again once it settles`, options);
    this.path = path;
  }
}

/**
 * The hashing thread and its caller disagree (a bug, not the file's nor the
 * network's doing): fewer digests came than were asked, or they were asked
 * of a stream that closed. Not retried: the upload is marked failed, loudly.
 */
export class HashProtocolError extends CryomixWatchError {
  constructor(problem: string) {
    super('HASH_PROTOCOL', `hashing the upload went wrong: ${problem}`);
  }
}
