import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readCapped } from '../net/http.js';
import { TransientError } from '../errors.js';
import { ChecksumMismatchError, FileChangedError } from './errors.js';
import { MAX_ERROR_BODY, networkFailure, stallReason, storageRefusal, throttled, transferSignal } from './failures.js';
import { sharedBlockMemory, type BlockMemory, type FileBlocks } from './blockMemory.js';
import { sendFile } from './fileBody.js';
import { directly, FolderNotAnsweringError, type FileOperations } from '../files/folderGate.js';
import { sharedHashThread, type HashThread } from './hashThread.js';
import { UploadCounter } from './uploadCounter.js';
import { md5FromGoogHash } from './storageAnswer.js';
import { StallWatchdog, drainAllowanceMs } from './watchdog.js';
import type { Throttle } from './throttle.js';

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
  /** Bytes the connection has taken so far, at most every 250 ms and not before; the result carries the final count. Must not throw. */
  onProgress?(bytesSent: number): void | Promise<void>;
  /** Node's global agent (keep-alive) by default; an https.Agent for an https URL. */
  agent?: Agent;
  /**
   * Runs each file operation (open, every read, close): the folder's gate, so
   * that a share that hangs mid-upload fails the PUT instead of holding it.
   */
  run?: FileOperations;
  /** The upload cap, shared with the other uploads; time spent waiting for it is not a stall. */
  throttle?: Throttle;
  /** Where the bytes are hashed: the process's shared thread by default. */
  hashThread?: HashThread;
  /** What the file is read into: the process's by default. */
  memory?: BlockMemory;
}

export interface PutResult {
  bytes: number;
  /** Hex, of the bytes sent. */
  sha256: string;
  /** Base64, as Google reports it in `x-goog-hash`. */
  md5: string;
  /** Hex, of the first HEAD_BYTES sent: what tells a later file of the same size apart (see readHead). */
  headSha256: string;
}

/**
 * Sends a file with one PUT to a signed URL, reading it once from disk
 * through a fixed set of buffers (memory stays flat whatever the size, see
 * sendFile) and hashing what is sent, on the hashing thread: this one only
 * reads and writes.
 *
 * Only `Content-Type` and `Content-Length` are set (with Node's `Host` and
 * `Connection`): a V4 signed URL fails on any `x-goog-*` or `Content-MD5` it
 * did not sign, and chunked encoding is refused by storage (SPEC guarantee
 * 5). Redirects are not followed (node:http never does, and a 3xx is a
 * StorageError): the signed query must not travel to another host. A failed
 * PUT is repeated from the first byte by the caller; signed PUT URLs cannot
 * resume.
 *
 * node:http rather than undici, which the API client uses: only node:http
 * says when the socket is done with a buffer (a write's callback), which is
 * what lets sendFile reuse its buffers.
 */
export async function putFile(put: PutRequest): Promise<PutResult> {
  put.signal?.throwIfAborted();
  const run = put.run ?? directly;
  const file = await openExactly(put.path, put.size, run);
  let started: Started;
  try {
    started = start(put);
  } catch (error) {
    // Refused before anything was read or sent (no memory or hashing thread to be had, an agent for the other protocol).
    await closeAfterRead(file, run);
    throw error;
  }
  const { blocks, counter, watchdog, signal, request } = started;
  const progress = throttled(put.onProgress);
  const answered = answerOf(request);
  // The last bytes may still sit in the kernel's send buffer, draining out of sight.
  request.once('finish', () => watchdog.restart(put.stallTimeoutMs + drainAllowanceMs(put.size)));
  const { throttle } = put;
  // A request that is over (answered early, failed) gives up its wait for the cap at once.
  const requestOver = new AbortController();
  request.once('close', () => requestOver.abort(new Error('the request is over')));
  const turn = AbortSignal.any([signal, requestOver.signal]);
  const pace = throttle && ((bytes: number) => (throttle.tryTake(bytes) ? undefined : watchdog.excuse(throttle.take(bytes, turn))));
  const sending: Promise<Sent> = sendFile(file, run, request, blocks, counter, (bytes) => {
    watchdog.poke();
    progress(bytes);
  }, pace).then(
    (ended) => ({ ended }),
    (error: Error) => {
      // The request reports it: its 'error' rejects `answered` unless storage had already answered (then judge does).
      request.destroy(error);
      return { ended: false, error };
    },
  );

  try {
    const response = await answered;
    watchdog.restart(put.stallTimeoutMs);
    const body = await readCapped(response, MAX_ERROR_BODY);
    const result = await judge(put, counter, sending, signal, response.statusCode ?? 0, response.headers, body.text);
    if (progress.failure !== undefined) throw progress.failure;
    return result;
  } catch (error) {
    // Recording progress failed (the state DB): that, not what it led to, is what the caller must see.
    throw progress.failure ?? explain(error, put, counter, watchdog.signal);
  } finally {
    progress.cancel();
    // Storage answered before taking the whole body, or we gave up: stop sending. A sent request keeps its connection for the next PUT.
    if (!request.writableFinished) request.destroy();
    // sendFile stops at once now, unless a file operation is under way: waiting for that is bounded by the watchdog and shutdown.
    const stopped = await untilAborted(sending, signal).then(
      () => true,
      () => false,
    );
    watchdog.stop();
    // Now, whatever still runs: the hashing thread must not work, nor keep a stopping process alive, for an upload that is over.
    counter.close();
    blocks.release();
    // The file closes once nothing reads from it any more (or the folder stopped answering: then whenever it does).
    if (stopped) await closeAfterRead(file, run);
    // The PUT failed already, with its own reason; closing a file that was only read has nothing to add to it.
    else void sending.then(() => closeAfterRead(file, run)).catch(() => undefined);
  }
}

/** What a PUT holds besides its file. */
interface Started {
  blocks: FileBlocks;
  counter: UploadCounter;
  watchdog: StallWatchdog;
  /** Aborts the transfer: a stall, the hashing thread stopping (its bytes would go out unhashed), or shutdown. */
  signal: AbortSignal;
  request: ClientRequest;
}

/** All of it, or none: whatever was had is given back if the rest cannot be. */
function start(put: PutRequest): Started {
  let blocks: FileBlocks | undefined;
  let counter: UploadCounter | undefined;
  let watchdog: StallWatchdog | undefined;
  try {
    blocks = (put.memory ?? sharedBlockMemory).lend(put.size);
    counter = new UploadCounter(put.path, put.size, put.hashThread ?? sharedHashThread, blocks.memory);
    watchdog = new StallWatchdog(put.stallTimeoutMs, stallReason('upload', put.url));
    const signal = transferSignal(AbortSignal.any([watchdog.signal, counter.signal]), put.signal);
    const request = (put.url.protocol === 'https:' ? httpsRequest : httpRequest)(put.url, {
      method: 'PUT',
      headers: { 'content-type': put.contentType, 'content-length': String(put.size) },
      signal,
      ...(put.agent === undefined ? {} : { agent: put.agent }),
    });
    return { blocks, counter, watchdog, signal, request };
  } catch (error) {
    watchdog?.stop();
    counter?.close();
    blocks?.release();
    throw error;
  }
}

/** How sendFile ended: `ended` once the file ended at the queued size and the request was ended (if still open). */
interface Sent {
  ended: boolean;
  error?: unknown;
}

/** `work`'s outcome, or `signal`'s reason as soon as it aborts; `work` wins if both are there already. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort = () => undefined as void;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

/** Storage's answer, or why there is none. Errors after the answer show on its body, which the caller reads. */
function answerOf(request: ClientRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    request.once('response', resolve);
    request.on('error', reject);
  });
}

/**
 * Closes a file that was only read. The close starts at once whatever the
 * folder's state; only waiting for it goes through the gate. On a share that
 * stopped answering it is left to finish in the kernel: nothing it could
 * report would change what was read and sent.
 */
async function closeAfterRead(file: FileHandle, run: FileOperations): Promise<void> {
  const closing = file.close();
  try {
    await run(() => closing);
  } catch (error) {
    if (!(error instanceof FolderNotAnsweringError)) throw error;
    closing.catch(() => undefined);
  }
}

/** Opens the file and refuses a version that already differs from the queued one, before any byte goes out. */
async function openExactly(path: string, size: number, run: FileOperations): Promise<FileHandle> {
  // Never through a symlink: a file swapped for a link after it settled must not be uploaded.
  const opening = open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const handle = await run(() => opening).catch((cause: Error) => {
    // Given up on (a share that stopped answering): the open may still succeed later, and its descriptor must not leak.
    if (cause instanceof FolderNotAnsweringError) void opening.then((late) => late.close()).catch(() => undefined);
    throw new FileChangedError(path, `it cannot be opened: ${cause.message}`, { cause });
  });
  try {
    const stat = await run(() => handle.stat());
    if (stat.size !== size) throw new FileChangedError(path, `it is ${stat.size} bytes now, ${size} when queued`);
    return handle;
  } catch (error) {
    await closeAfterRead(handle, run);
    throw error;
  }
}

async function judge(
  put: PutRequest,
  counter: UploadCounter,
  sending: Promise<Sent>,
  signal: AbortSignal,
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
  body: string,
): Promise<PutResult> {
  if (statusCode < 200 || statusCode >= 300) throw storageRefusal('upload', statusCode, headers, body);
  // Every byte passes the counter before the socket, so an honest 2xx implies a full count.
  if (counter.bytes !== put.size) {
    throw new TransientError(`storage answered ${statusCode} after ${counter.bytes} of ${put.size} bytes`, { statusCode });
  }
  // Storage answers once it has every byte, maybe before the read past the end came back: that read may yet find the file
  // grown, or fail, and the digests come only after it.
  const sent = await untilAborted(sending, signal);
  if (counter.failure !== undefined) throw counter.failure;
  if (sent.error !== undefined) throw sent.error;
  if (!sent.ended) throw new TransientError(`storage answered ${statusCode} before the whole body was sent`, { statusCode });
  const { sha256, md5, headSha256 } = await counter.digests(signal);
  const stored = md5FromGoogHash(headers['x-goog-hash']);
  // Composite objects carry no MD5; then storage's word that it got Content-Length bytes is all there is.
  if (stored !== undefined && stored !== md5) throw new ChecksumMismatchError(md5, stored);
  return { bytes: put.size, sha256, md5, headSha256 };
}

/**
 * Why the PUT really failed, whatever the request reported: it fails with
 * whatever destroyed it, so our own reasons are checked first.
 */
function explain(error: unknown, put: PutRequest, counter: UploadCounter, stall: AbortSignal): unknown {
  if (put.signal?.aborted === true) return put.signal.reason;
  if (counter.failure !== undefined) return counter.failure;
  if (stall.aborted) return stall.reason;
  return networkFailure('upload', put.url, error);
}
