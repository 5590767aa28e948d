import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { TransientError } from '../errors.js';
import { ensureSharedDirectory } from '../files/directory.js';
import { placeAtFreeName } from '../files/place.js';
import { readCapped } from '../net/http.js';
import { redactUrl } from '../net/redact.js';
import { undici } from '../net/undici.js';
import { syncDirectory, syncFile } from './durable.js';
import { sha256File } from './hash.js';
import { MAX_ERROR_BODY, networkFailure, stallReason, storageRefusal, throttled, transferSignal } from './failures.js';
import { isPlainFileName } from './fileName.js';
import { StallWatchdog } from './watchdog.js';
import type { Throttle } from './throttle.js';

export interface DownloadRequest {
  /** A URL that passed `validateSignedUrl`; its query is a credential and is never logged. */
  url: URL;
  /** The mix's masters folder (mixMastersDirectory); created (0755) when missing. */
  directory: string;
  /** A plain name such as `FinalMaster.wav`; anything with a path in it is a TypeError. */
  fileName: string;
  /**
   * Names this download's `.partial` (e.g. the job's Session-Id): two
   * downloads into one folder (two versions of one mix, one still
   * finishing) must never write into, or remove, each other's partial file.
   */
  partialTag: string;
  /** No bytes arriving for this long aborts the GET as a TransientError. */
  stallTimeoutMs: number;
  /** Shutdown: aborting rejects with the signal's reason (an AbortError by default), not a TransientError. */
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
  /** The masters' download cap, shared with the other downloads. */
  throttle?: Throttle;
  /** Bytes written so far and the announced total, at most every 250 ms, and once at the end. Must not throw. */
  onProgress?(bytes: number, total: number | undefined): void;
}

export interface DownloadResult {
  /** Where the file now is: `<directory>/<fileName>`, or `<directory>/FinalMaster (2).wav` when the name was taken. */
  path: string;
  bytes: number;
  /** Hex, of the bytes written. */
  sha256: string;
}

/** Suffix of the file a download streams into before it is placed under its own name. */
export const PARTIAL_SUFFIX = '.partial';

/**
 * Fetches a signed GET URL into `<directory>/<fileName>`, durably and
 * without ever replacing a file that is already there.
 *
 * The body streams into `<fileName>.<partialTag>.partial` (a stale one left by a crash is
 * replaced), counted and hashed on the way; a count that differs from
 * `Content-Length` is a TransientError. The file is fsynced, then linked
 * under the first free name (` (2)`, ` (3)`…, see placeAtFreeName), so a
 * name that exists after a crash always holds the whole file. A name that
 * already holds these very bytes (placed before a crash, never recorded)
 * is taken as it is, not placed again beside itself. The caller records
 * the result, then makes its name durable (syncPlaced): a sync that fails
 * is retried without a second download. Whatever fails, the `.partial` is
 * removed.
 *
 * Errors: TransientError (network, stall, 408/429/5xx, short body),
 * StorageError with `transfer: 'download'` (400 ExpiredToken, 403 and any
 * other refusal, a redirect, which is never followed), the signal's reason
 * on abort, and the file system's own errors (with `syscall`) for the disk.
 */
export async function downloadFile(download: DownloadRequest): Promise<DownloadResult> {
  download.signal?.throwIfAborted();
  if (!isPlainFileName(download.fileName)) {
    throw new TypeError(`downloadFile: expected a plain file name, got ${JSON.stringify(download.fileName)}`);
  }
  await ensureSharedDirectory(download.directory);
  const partial = join(download.directory, `${download.fileName}.${download.partialTag}${PARTIAL_SUFFIX}`);
  const watchdog = new StallWatchdog(download.stallTimeoutMs, stallReason('download', download.url));
  const reporter = throttled(download.onProgress);
  const progress: Progress = { bytes: 0, total: undefined, disk: undefined };
  const signal = transferSignal(watchdog.signal, download.signal);
  let body: Readable | undefined;
  try {
    const { request } = undici();
    const response = await request(download.url, {
      method: 'GET',
      signal,
      // The stall watchdog covers the wait for headers and every gap in the body; undici's own timers would race it.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(download.dispatcher === undefined ? {} : { dispatcher: download.dispatcher }),
    });
    body = response.body;
    watchdog.poke();
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const refusal = await readCapped(body, MAX_ERROR_BODY);
      throw storageRefusal('download', response.statusCode, response.headers, refusal.text);
    }
    progress.total = contentLength(response.headers['content-length']);
    const sha256 = await receive(body, partial, progress, watchdog, reporter, download.throttle, signal);
    if (progress.total !== undefined && progress.bytes !== progress.total) {
      throw new TransientError(
        `short download from ${redactUrl(download.url)}: ${progress.bytes} of the ${progress.total} bytes storage announced`,
        { statusCode: response.statusCode },
      );
    }
    watchdog.stop();
    const path = await onDisk(progress, () => place(partial, join(download.directory, download.fileName), progress.bytes, sha256));
    download.onProgress?.(progress.bytes, progress.total);
    return { path, bytes: progress.bytes, sha256 };
  } catch (error) {
    await rm(partial, { force: true });
    throw reporter.failure ?? explain(error, download, watchdog.signal, progress);
  } finally {
    reporter.cancel();
    watchdog.stop();
    // Releases the connection when the body was not read to its end (a failure before or while writing).
    body?.destroy();
  }
}

interface Progress {
  bytes: number;
  /** From Content-Length; undefined when storage sent none. */
  total: number | undefined;
  /** Set when writing the `.partial` failed: reported as the file system's error, not the network's. */
  disk: unknown;
}

/** Streams the body into a fresh `.partial`, fsynced and closed; resolves with the SHA-256 of what was written. */
async function receive(
  body: Readable,
  partial: string,
  progress: Progress,
  watchdog: StallWatchdog,
  report: (bytes: number, total: number | undefined) => void,
  throttle: Throttle | undefined,
  signal: AbortSignal,
): Promise<string> {
  const file = await onDisk(progress, async () => {
    // Removed, not truncated: a stale `.partial` could be a link to someone's file, and must not be written through.
    await rm(partial, { force: true });
    const handle = await open(partial, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    // The mode passed to open() goes through the umask; masters are for the studio's users, not only the daemon's.
    await handle.chmod(0o644);
    return handle;
  });
  try {
    const hash = createHash('sha256');
    for await (const chunk of body as AsyncIterable<Buffer>) {
      watchdog.poke();
      // Not reading on holds the sender back (TCP flow control); waiting for our own cap is not a stall.
      if (throttle !== undefined && !throttle.tryTake(chunk.length)) await watchdog.excuse(throttle.take(chunk.length, signal));
      await onDisk(progress, () => writeAll(file, chunk));
      progress.bytes += chunk.length;
      hash.update(chunk);
      report(progress.bytes, progress.total);
    }
    await onDisk(progress, () => file.sync());
    return hash.digest('hex');
  } finally {
    await file.close();
  }
}

/** write(2) may take less than it was given; a chunk is only written once all of it is. */
async function writeAll(file: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    const { bytesWritten } = await file.write(chunk, offset);
    offset += bytesWritten;
  }
}

/** Puts the complete `.partial` under the first free name, or finds it there already. */
async function place(partial: string, target: string, bytes: number, sha256: string): Promise<string> {
  const isAlreadyThere = async (candidate: string) => (await stat(candidate)).size === bytes && (await sha256File(candidate)) === sha256;
  const placed = await placeAtFreeName(partial, target, isAlreadyThere);
  await rm(partial);
  return placed;
}

/** Makes placed results durable: their bytes (a no-op for a hard link; needed for a copy) and their names. */
export async function syncPlaced(paths: readonly string[]): Promise<void> {
  for (const path of paths) await syncFile(path);
  for (const directory of new Set(paths.map((path) => dirname(path)))) await syncDirectory(directory);
}

async function onDisk<T>(progress: Progress, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    progress.disk ??= error;
    throw error;
  }
}

/**
 * Why the download really failed: undici rejects with whatever aborted the
 * body, so our own reasons (shutdown, stall, the disk) come first.
 */
function explain(error: unknown, download: DownloadRequest, stall: AbortSignal, progress: Progress): unknown {
  if (download.signal?.aborted === true) return download.signal.reason;
  if (stall.aborted) return stall.reason;
  if (progress.disk !== undefined) return progress.disk;
  const { bytes, total } = progress;
  const short = total !== undefined && bytes < total ? `: short download, ${bytes} of ${total} bytes` : '';
  return networkFailure('download', download.url, error, short);
}

/** Undefined when absent or not a plain decimal: then the byte count has nothing to be checked against. */
function contentLength(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string' || !/^\d{1,15}$/.test(header.trim())) return undefined;
  return Number(header.trim());
}
