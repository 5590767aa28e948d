import { constants, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { request, type Dispatcher } from 'undici';
import { readCapped } from '../net/http.js';
import { TransientError } from '../errors.js';
import { ChecksumMismatchError, FileChangedError } from './errors.js';
import { MAX_ERROR_BODY, networkFailure, stallReason, storageRefusal, throttled, transferSignal } from './failures.js';
import { HashingCounter } from './hashingCounter.js';
import { md5FromGoogHash } from './storageAnswer.js';
import { StallWatchdog, drainAllowanceMs } from './watchdog.js';

export interface PutRequest {
  /** A URL that passed `validateSignedUrl`; its query is a credential and is never logged. */
  url: URL;
  path: string;
  /** The size the queued version had; any other length is a FileChangedError. */
  size: number;
  /** Exactly the Content-Type the URL was signed for. */
  contentType: string;
  /**
   * No bytes moving (either way) for this long aborts the PUT as a
   * TransientError. After the last byte, waiting for the answer also allows
   * for the send buffer to drain at a slow uplink's pace (see drainAllowanceMs).
   */
  stallTimeoutMs: number;
  /** Shutdown: aborting rejects with the signal's reason (an AbortError by default), not a TransientError. */
  signal?: AbortSignal;
  /** Bytes handed to the connection so far, at most every 250 ms and not before; the result carries the final count. Must not throw. */
  onProgress?(bytesSent: number): void;
  dispatcher?: Dispatcher;
}

export interface PutResult {
  bytes: number;
  /** Hex, of the bytes sent. */
  sha256: string;
  /** Base64, as Google reports it in `x-goog-hash`. */
  md5: string;
}

/**
 * Sends a file with one PUT to a signed URL, streaming it once from disk
 * (memory stays flat whatever the size) and hashing what is sent.
 *
 * Only `Content-Type` and `Content-Length` are set: a V4 signed URL fails on
 * any `x-goog-*` or `Content-MD5` it did not sign, and chunked encoding is
 * refused by storage (SPEC guarantee 5). Redirects are not followed (undici's
 * `request()` never does, and a 3xx is a StorageError): the signed query
 * must not travel to another host. A failed PUT is repeated from the first
 * byte by the caller; signed PUT URLs cannot resume.
 */
export async function putFile(put: PutRequest): Promise<PutResult> {
  put.signal?.throwIfAborted();
  const file = await openExactly(put.path, put.size);
  const watchdog = new StallWatchdog(put.stallTimeoutMs, stallReason('upload', put.url));
  const progress = throttled(put.onProgress);
  const hashing = new HashingCounter(put.path, put.size, (bytes) => {
    watchdog.poke();
    progress(bytes);
  });
  file.on('error', (cause) => hashing.destroy(hashing.fail(`reading it failed: ${cause.message}`, cause)));
  hashing.on('close', () => file.destroy());
  file.pipe(hashing);
  // The last bytes may still sit in the kernel's send buffer, draining out of sight.
  hashing.once('end', () => watchdog.restart(put.stallTimeoutMs + drainAllowanceMs(put.size)));

  try {
    const response = await request(put.url, {
      method: 'PUT',
      headers: { 'content-type': put.contentType, 'content-length': String(put.size) },
      body: hashing,
      signal: transferSignal(watchdog.signal, put.signal),
      // The stall watchdog above covers both directions; undici's own timers would race it.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(put.dispatcher === undefined ? {} : { dispatcher: put.dispatcher }),
    });
    watchdog.restart(put.stallTimeoutMs);
    const body = await readCapped(response.body, MAX_ERROR_BODY);
    const result = judge(put, hashing, response.statusCode, response.headers, body.text);
    if (progress.failure !== undefined) throw progress.failure;
    return result;
  } catch (error) {
    // Recording progress failed (the state DB): that, not what it led to, is what the caller must see.
    throw progress.failure ?? explain(error, put, hashing, watchdog.signal);
  } finally {
    progress.cancel();
    watchdog.stop();
    hashing.destroy();
  }
}

/** Opens the file and refuses a version that already differs from the queued one, before any byte goes out. */
async function openExactly(path: string, size: number): Promise<ReadStream> {
  // Never through a symlink: a file swapped for a link after it settled must not be uploaded.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((cause: Error) => {
    throw new FileChangedError(path, `it cannot be opened: ${cause.message}`, { cause });
  });
  try {
    const stat = await handle.stat();
    if (stat.size !== size) throw new FileChangedError(path, `it is ${stat.size} bytes now, ${size} when queued`);
    return handle.createReadStream();
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function judge(
  put: PutRequest,
  hashing: HashingCounter,
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
  body: string,
): PutResult {
  if (statusCode >= 200 && statusCode < 300) {
    // Every byte passes the counter before the socket, so an honest 2xx implies a full count.
    if (hashing.bytes !== put.size) {
      throw new TransientError(`storage answered ${statusCode} after ${hashing.bytes} of ${put.size} bytes`, { statusCode });
    }
    const { sha256, md5 } = hashing.digests();
    const stored = md5FromGoogHash(headers['x-goog-hash']);
    // Composite objects carry no MD5; then storage's word that it got Content-Length bytes is all there is.
    if (stored !== undefined && stored !== md5) throw new ChecksumMismatchError(md5, stored);
    return { bytes: put.size, sha256, md5 };
  }
  throw storageRefusal('upload', statusCode, headers, body);
}

/**
 * Why the PUT really failed, whatever undici reported: undici rejects with
 * whatever aborted the body, so our own reasons are checked first.
 */
function explain(error: unknown, put: PutRequest, hashing: HashingCounter, stall: AbortSignal): unknown {
  if (put.signal?.aborted === true) return put.signal.reason;
  if (hashing.failure !== undefined) return hashing.failure;
  if (stall.aborted) return stall.reason;
  return networkFailure('upload', put.url, error);
}
