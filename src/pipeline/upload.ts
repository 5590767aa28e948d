import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { CryomixApi, SignedUpload } from '../cryomix/api.js';
import { RejectedError, UnauthorizedError, UnsafeUrlError } from '../cryomix/errors.js';
import { TransientError } from '../errors.js';
import { isStoreError, isStoreUnavailable } from '../store/failures.js';
import type { Job, TransitionPatch, UploadReservation } from '../store/job.js';
import type { State } from '../store/states.js';
import type { JobStore, Move } from '../store/store.js';
import { ChecksumMismatchError, FileChangedError, StorageError } from '../transfer/errors.js';
import { putFile, type PutRequest, type PutResult } from '../transfer/put.js';
import type { Throttle } from '../transfer/throttle.js';
import { readHead, sha256File, sha256Hex } from '../transfer/hash.js';
import { contentTypeForPath } from '../watch/sniff.js';
import type { AfterUpload } from './afterUpload.js';
import { afterUploadFollowUps } from './followUps.js';
import type { MasteringPlan } from './master.js';
import { holdClaim } from './claim.js';
import { ClaimAtRiskAbort, ParkedAbort } from './aborts.js';
import { untilText } from './bandwidth.js';
import { retryDelayMs, type BackoffPolicy } from './backoff.js';
import { TwinInFlightError } from './twins.js';
import { lifetimeSuffices, requestedExpirySeconds, type ThroughputEstimate } from './urlLifetime.js';
import { isGone, isPermissionDenied } from '../files/errno.js';
import { directly, FolderNotAnsweringError, type FileOperations } from '../files/folderGate.js';
import { isFileSystemError, sameVersion, unreadableReason } from './version.js';

/** Storage's ExpiredToken is renewed without counting as a failure, but not forever (a broken clock). */
const MAX_EXPIRED_RENEWALS = 3;

export interface UploadContext {
  store: JobStore;
  api: CryomixApi;
  logger: Logger;
  backoff: BackoffPolicy;
  urlExpirySeconds: number;
  stallTimeoutMs: number;
  throughput: ThroughputEstimate;
  /** The upload cap, shared by every upload of this process. */
  throttle: Throttle;
  /** How many uploads may run at once: each gets at least its share of the cap. */
  concurrency: number;
  afterUpload(job: Job): AfterUpload;
  /** What the job is mastered with once its upload is stored; undefined when its folder asks for no masters. */
  masteringPlan(job: Job): MasteringPlan | undefined;
  /** The file changed under the upload: look at it again so the new version settles. */
  onStale(job: Job): void;
  /** The API refused the key: pause all API work. */
  onUnauthorized(error: UnauthorizedError): void;
  /** An attempt failed and the file waits to be tried again (metrics count these by reason). */
  onRetry?(job: Job, reason: RetryReason): void;
  put?: (request: PutRequest) => Promise<PutResult>;
  /** The watched folder a job's file is in, as the daemon sees it; none for `upload FILE`. */
  folderOf?(job: Job): FolderAccess | undefined;
}

export interface FolderAccess {
  /** The folder's gate: a hung share fails the attempt instead of holding an upload slot. */
  run: FileOperations;
  /** Its root is there and watched: only then is a file that cannot be found gone. */
  rootPresent(): Promise<boolean>;
}

/**
 * One attempt at one queued job, from claim to a committed outcome. Every
 * exit path leaves the row in a state the table allows, and every state the
 * row reaches is committed before the next API call it enables.
 */
export async function uploadJob(jobId: number, context: UploadContext, signal: AbortSignal): Promise<void> {
  const { store } = context;
  if (signal.aborted) return;
  const queued = await store.get(jobId);
  const run = context.folderOf?.(queued)?.run ?? directly;
  // Read before the claim, so that taking the job and holding its beginning against identical files are one commit.
  // A read that fails here is made again, and its error filed, by the attempt.
  const headSha256 = await run(() => readHead(queued.path)).then(sha256Hex, () => undefined);
  if (signal.aborted) return;
  const claimed = await store.claimUpload(jobId, headSha256);
  if (!claimed) return;
  const { job, reservation } = claimed;
  await runClaimed(job, headSha256 !== undefined && reservation !== undefined ? { headSha256, reservation } : undefined, run, context, signal);
}

/**
 * The daemon's upload slot: takes the oldest queued job that no other
 * process (another daemon sharing the queue) is taking, tells `onClaimed`
 * which, and runs its attempt.
 */
export async function uploadNextJob(context: UploadContext, signal: AbortSignal, onClaimed: (job: Job) => void): Promise<void> {
  if (signal.aborted) return;
  const job = await context.store.claimNextUpload();
  if (!job) return;
  onClaimed(job);
  await runClaimed(job, undefined, context.folderOf?.(job)?.run ?? directly, context, signal);
}

/** An attempt at a claimed job, holding the claim while it runs. */
async function runClaimed(job: Job, held: Held | undefined, run: FileOperations, context: UploadContext, signal: AbortSignal): Promise<void> {
  const claim = holdClaim(() => context.store.renewLease(job.id), signal);
  try {
    await attempt(job, held, run, context, claim.signal);
  } catch (error) {
    await fileFailure(job, claim.storeFailure ?? error, context, claim.signal);
  } finally {
    claim.release();
  }
  if (claim.storeFailure !== undefined) throw claim.storeFailure;
}

/** The file's beginning as read before the claim, and the reservation the claim made with it. */
interface Held {
  headSha256: string;
  reservation: UploadReservation;
}

async function attempt(job: Job, held: Held | undefined, run: FileOperations, context: UploadContext, signal: AbortSignal): Promise<void> {
  const { store } = context;
  await assertUnchanged(job, run);
  const headSha256 = held?.headSha256 ?? sha256Hex(await run(() => readHead(job.path)));
  let reservation = held?.reservation ?? (await store.reserveUpload(job, headSha256));
  let hashBeforeUpload: string | undefined;
  while (reservation.kind !== 'send') {
    if (reservation.kind === 'lost') {
      context.logger.debug({ file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: no longer this process's upload; the attempt is dropped`);
      return;
    }
    if (reservation.kind === 'wait') throw new TwinInFlightError(job.path, reservation.holder.path);
    if (reservation.kind === 'duplicate') {
      const { original } = reservation;
      const sha256 = hashBeforeUpload;
      // Stored already, under the original's Session-Id: from here on like any stored upload (masters, after-upload step).
      if (!(await fileStored(job, context, { sha256, headSha256, duplicateOf: original.id, error: null }))) return;
      await store.durable();
      context.logger.info({ file: job.path, duplicateOf: original.path }, `${basename(job.path)}: same bytes as ${original.path}, not sent again`);
      return;
    }
    // A big file takes a while to read twice: say why, to whoever reads debug logs.
    context.logger.debug({ file: job.path }, `${basename(job.path)}: same size and beginning as an earlier upload; hashing it whole first to rule out a duplicate`);
    hashBeforeUpload = await sha256File(job.path, signal);
    reservation = await store.reserveUpload(job, headSha256, hashBeforeUpload);
  }
  const started = Date.now();
  const { result, target } = await putWithFreshUrl(job, contentTypeOf(job.path), run, context, signal);
  context.throughput.record(result.bytes, Date.now() - started);
  // The bytes stored must be the bytes on disk now: a file rewritten during the PUT is a new version.
  await assertUnchanged(job, run);
  // What was reserved, or found to be no duplicate, must be what was sent.
  if (result.headSha256 !== headSha256 || (hashBeforeUpload !== undefined && hashBeforeUpload !== result.sha256)) {
    throw new FileChangedError(job.path, 'its content differs from the first read');
  }
  await fileStored(job, context, { sha256: result.sha256, headSha256: result.headSha256, md5: result.md5, bytesSent: result.bytes, uploadFolder: target.uploadFolderName, error: null });
}

/**
 * Files the stored upload, and what comes next, in one commit: a crash
 * finds either both or neither, and a burst pays one sync, not two. Unless
 * the row moved on meanwhile (the file changed or vanished and another
 * version took over): then this attempt's result no longer describes the
 * file, and it is dropped.
 */
async function fileStored(job: Job, context: UploadContext, stored: TransitionPatch): Promise<boolean> {
  const filed = (await context.store.fileOutcome(job.id, 'uploaded', stored, (uploaded) => afterStored(uploaded, context))) !== undefined;
  if (!filed) context.logger.debug({ file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: the version changed during the upload; its result is dropped`);
  return filed;
}

/** Finishes a row left `uploaded` (a crash between the two commits of an older version). */
export async function finishStored(job: Pick<Job, 'id'>, context: Pick<UploadContext, 'store' | 'masteringPlan' | 'afterUpload'>): Promise<void> {
  await context.store.moveIf(job.id, (stored) => afterStored(stored, context));
}

/**
 * The bytes are stored: done, or on to mastering with the plan of the
 * moment stored on the row; and the folder's after-upload step due. Decided
 * within the commit, from the row as it is then: `upload --master` in
 * another process may have stored a plan since the attempt began, or
 * another process finished the row already.
 */
function afterStored(stored: Job, context: Pick<UploadContext, 'masteringPlan' | 'afterUpload'>): Move[] {
  if (stored.state !== 'uploaded') return [];
  const masteringPlan = context.masteringPlan(stored);
  const followUps = afterUploadFollowUps(context.afterUpload(stored));
  return [masteringPlan ? { to: 'mastering', patch: { nextAttemptAt: Date.now(), masteringPlan }, followUps } : { to: 'done', followUps }];
}

function contentTypeOf(path: string): string {
  const type = contentTypeForPath(path);
  if (!type) throw new Error(`no content type for ${path}`);
  return type;
}

async function assertUnchanged(job: Job, run: FileOperations): Promise<void> {
  const { size, mtimeMs } = await run(() => stat(job.path));
  if (!sameVersion(job, { size, mtimeMs })) throw new FileChangedError(job.path, `now ${size} bytes, modified ${new Date(mtimeMs).toISOString()}`);
}

/**
 * PUTs the file to a URL asked for just before. ExpiredToken means the URL
 * outlived itself: ask again, same Session-Id. A 403 may be a signature the
 * API got wrong once: one fresh URL, then give up (SPEC guarantee 5).
 */
async function putWithFreshUrl(
  job: Job,
  contentType: string,
  run: FileOperations,
  context: UploadContext,
  signal: AbortSignal,
): Promise<{ result: PutResult; target: SignedUpload }> {
  const put = context.put ?? putFile;
  let expiredRenewals = 0;
  let refusedOnce = false;
  for (;;) {
    // The claim and the reservation that allow this upload are on disk before the API hears of it.
    await context.store.durable();
    const target = await requestLongEnoughUrl(job, contentType, context, signal);
    try {
      const result = await put({
        url: target.url,
        path: job.path,
        size: job.size,
        contentType,
        stallTimeoutMs: context.stallTimeoutMs,
        signal,
        run,
        throttle: context.throttle,
        // Progress only feeds `list`: a state database that does not answer for a moment must not cost a PUT that goes through.
        onProgress: (bytesSent) => context.store.recordProgress(job.id, bytesSent).catch((error: unknown) => {
          if (!isStoreUnavailable(error)) throw error;
        }),
      });
      return { result, target };
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      if (error.storageCode === 'ExpiredToken' && expiredRenewals < MAX_EXPIRED_RENEWALS) {
        expiredRenewals++;
        context.logger.info({ file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: the signed URL expired, asking for a fresh one`);
        continue;
      }
      if (error.statusCode === 403 && !refusedOnce) {
        refusedOnce = true;
        context.logger.warn({ file: job.path, sessionId: job.sessionId, storageCode: error.storageCode }, `${basename(job.path)}: storage refused the signed URL, trying one fresh URL`);
        continue;
      }
      throw error;
    }
  }
}

/**
 * Asks for a URL that lives as long as the transfer needs. One that the API
 * made shorter is tried anyway: the estimate may be pessimistic, and if the
 * URL does expire, storage's ExpiredToken asks for a fresh one.
 */
async function requestLongEnoughUrl(job: Job, contentType: string, context: UploadContext, signal: AbortSignal): Promise<SignedUpload> {
  // Under a cap, each of the uploads that may run at once gets its share.
  const cap = context.throttle.rate;
  const expectedMs = context.throughput.expectedMs(job.size, cap === null ? null : cap / context.concurrency);
  const askedAt = performance.now();
  const target = await context.api.requestUploadUrl({
    sessionId: job.sessionId,
    objectName: basename(job.path),
    contentType,
    expirationSeconds: requestedExpirySeconds(context.urlExpirySeconds, expectedMs),
    signal,
  });
  if (!lifetimeSuffices(target.lifetimeSeconds, askedAt, expectedMs)) {
    context.logger.warn(
      { file: job.path, sessionId: job.sessionId, lifetimeSeconds: target.lifetimeSeconds },
      `${basename(job.path)}: the API gave an upload URL valid for ${target.lifetimeSeconds} s, and the upload may take ${Math.ceil(expectedMs / 1000)} s; trying it anyway`,
    );
  }
  return target;
}

interface Outcome {
  to: State;
  patch: TransitionPatch;
  /** Runs once the outcome is committed. */
  then?: () => void;
}

/** Why an upload waits for another attempt: a short, fixed list, so it can label a metric. */
export type RetryReason = 'shutdown' | 'identical_file_uploading' | 'rate_limited' | 'server_error' | 'network' | 'checksum' | 'file_system' | 'folder_unavailable' | 'state_database';

function transientReason(error: unknown): RetryReason {
  if (error instanceof ChecksumMismatchError) return 'checksum';
  if (!(error instanceof TransientError)) return 'file_system';
  if (error.statusCode === 429) return 'rate_limited';
  // 408 and 5xx: the other end is there but could not take it now; no status: the network or a stall.
  return error.statusCode === undefined ? 'network' : 'server_error';
}

/**
 * Files a failed attempt. Only a broken state DB escapes (the daemon must
 * stop). The outcome is filed only while the row is still this process's
 * upload: replaced, removed or taken over meanwhile, its story is over.
 */
async function fileFailure(job: Job, error: unknown, context: UploadContext, signal: AbortSignal): Promise<void> {
  if (isStoreError(error)) throw error;
  // A file is only gone if its folder is there: an unmounted share's files wait for it. Asked now, not at the last root check.
  const folderThere = isGone(readErrorOf(error)) ? ((await context.folderOf?.(job)?.rootPresent()) ?? true) : true;
  const outcome = classifyFailure(job, error, context, signal, folderThere);
  if (!(await context.store.fileOutcome(job.id, outcome.to, outcome.patch))) return;
  await context.store.durable();
  outcome.then?.();
}

/** A file that could not be read has not necessarily changed: it is judged by the read error. */
const readErrorOf = (error: unknown): unknown => (error instanceof FileChangedError && error.cause !== undefined ? error.cause : error);

function classifyFailure(job: Job, error: unknown, context: UploadContext, signal: AbortSignal, folderThere: boolean): Outcome {
  const message = error instanceof Error ? error.message : String(error);
  const readError = readErrorOf(error);
  const retry = (reason: RetryReason, patch: TransitionPatch): Outcome => ({ to: 'retrying', patch, then: () => context.onRetry?.(job, reason) });
  const later = () => Date.now() + retryDelayMs(context.backoff, job.attempts);
  // A pause window of uploads.schedule: queued again, not counted as an attempt; it starts (from the first byte) when the pause ends,
  // whether at the window's end, on a reload that removes it, or with `upload FILE --limit`.
  if (signal.reason instanceof ParkedAbort) {
    return { to: 'queued', patch: { attempts: job.attempts - 1, error: `uploads are paused (${signal.reason.why})${untilText(signal.reason.until)}` } };
  }
  // The state database did not answer in time to keep the claim: resumed, same Session-Id, by whichever daemon claims it next.
  if (signal.reason instanceof ClaimAtRiskAbort) return retry('state_database', { nextAttemptAt: Date.now(), error: signal.reason.message });
  // Someone stopped this attempt (shutdown, Ctrl-C): not a failure of the file.
  if (signal.aborted) return retry('shutdown', { nextAttemptAt: Date.now(), error: 'interrupted by shutdown; resumes on the next start' });
  if (isGone(readError) && !folderThere) {
    return retry('folder_unavailable', { nextAttemptAt: later(), error: `its folder ${job.folder} is not there (unmounted?); the upload resumes when it is back` });
  }
  if (isGone(readError)) return { to: 'removed', patch: { error: 'the file disappeared before it was uploaded' } };
  if (readError instanceof FolderNotAnsweringError) return retry('folder_unavailable', { nextAttemptAt: later(), error: message });
  const unreadable = unreadableReason(readError);
  // Permissions being fixed, or an SMB lock conflict (reported the same way): not final.
  if (unreadable && isPermissionDenied(readError)) return retry('file_system', { nextAttemptAt: later(), error: `${unreadable}; tried again later` });
  if (unreadable) return { to: 'rejected', patch: { error: unreadable } };
  if (error instanceof FileChangedError && !isFileSystemError(readError)) {
    return {
      to: 'removed',
      patch: { error: 'the file changed during the upload; its new version will be uploaded once it settles' },
      then: () => context.onStale(job),
    };
  }
  if (error instanceof TwinInFlightError) {
    // Not a failure: it waits as long as a first retry would, then looks for the twin's stored upload.
    return retry('identical_file_uploading', { nextAttemptAt: Date.now() + context.backoff.initialDelayMs, attempts: job.attempts - 1, error: message });
  }
  if (error instanceof UnauthorizedError) {
    return { to: 'queued', patch: { attempts: job.attempts - 1, error: message }, then: () => context.onUnauthorized(error) };
  }
  if (error instanceof TransientError || error instanceof ChecksumMismatchError || isFileSystemError(readError)) {
    // EMFILE, EIO and the like pass; backing off gives the system room.
    const retryAfterMs = error instanceof TransientError ? error.retryAfterMs : undefined;
    return retry(transientReason(error), { nextAttemptAt: Date.now() + retryDelayMs(context.backoff, job.attempts, retryAfterMs), error: message });
  }
  if (error instanceof RejectedError || error instanceof UnsafeUrlError || error instanceof StorageError) {
    return { to: 'failed', patch: { error: message } };
  }
  context.logger.error({ err: error, file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: unexpected error, marked failed`);
  return { to: 'failed', patch: { error: `unexpected error: ${message}` } };
}
