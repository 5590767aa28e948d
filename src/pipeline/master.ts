import { stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { Logger } from 'pino';
import { isInside, mastersDirectory, type FolderConfig } from '../config/index.js';
import { DOWNLOAD_WARNING_MS, type CryomixApi, type MasteringSettings, type SignedDownload } from '../cryomix/api.js';
import { RejectedError, UnauthorizedError } from '../cryomix/errors.js';
import { CryomixWatchError, TransientError } from '../errors.js';
import { isStoreError } from '../store/failures.js';
import type { Download, Job } from '../store/job.js';
import type { JobStore } from '../store/store.js';
import { downloadFile, syncPlaced, type DownloadRequest, type DownloadResult } from '../transfer/download.js';
import { StorageError } from '../transfer/errors.js';
import type { Throttle } from '../transfer/throttle.js';
import { SupersededAbort } from './aborts.js';
import { retryDelayMs, type BackoffPolicy } from './backoff.js';
import { holdClaim } from './claim.js';
import { doneHookFollowUp } from './followUps.js';
import { isFileSystemError } from './version.js';
import { isGone } from '../files/errno.js';

/** A job running this long is slow: poll once a minute rather than every few seconds. */
const SLOW_JOB_MS = 5 * 60_000;
const SLOW_POLL_MS = 60_000;
/** How often a job whose folder lost its mastering block is looked at again (the config may come back). */
const UNPLANNED_RECHECK_MS = 60 * 60_000;
/** Expired or refused download URLs are asked for again, a few times within one step. */
const MAX_URL_REFRESHES = 2;

/** What a folder's `mastering:` block asks for. */
export interface MasteringPlan {
  settings: MasteringSettings;
  /** Results go to `<outputDir>/<mix path in its folder>/` (mastersDirectoryFor). */
  outputDir: string;
  /**
   * The watched folder as the machine that made the plan mounts it: another
   * daemon sharing the queue may mount the share elsewhere (see
   * mastersDirectoryFor). Absent from plans stored before it was kept.
   */
  folder?: string;
  files: readonly string[];
  pollIntervalMs: number;
  /** A job still pending or processing this long after it was started fails; past half, it is said to be slow. */
  timeoutMs: number;
  /** Runs once the masters are in place (see runDoneHook). */
  onDone?: readonly string[];
}

export interface MasteringContext {
  store: JobStore;
  api: CryomixApi;
  logger: Logger;
  backoff: BackoffPolicy;
  stallTimeoutMs: number;
  urlExpirySeconds: number;
  /** What the job is mastered with (planFor), or undefined when nothing says. */
  plan(job: Job): MasteringPlan | undefined;
  onUnauthorized(error: UnauthorizedError): void;
  download?: (request: DownloadRequest) => Promise<DownloadResult>;
  /** The masters' download cap, shared by every download of this process. */
  throttle?: Throttle;
}

/** The mastering plan of a job's folder; undefined when the folder (or `upload FILE` outside any folder) asks for none. */
export function masteringPlan(folders: readonly FolderConfig[], job: Pick<Job, 'folder'>): MasteringPlan | undefined {
  const folder = folders.find((f) => f.path === job.folder);
  if (!folder?.mastering) return undefined;
  return {
    settings: folder.mastering.settings,
    outputDir: mastersDirectory(folder),
    folder: folder.path,
    files: folder.mastering.files,
    pollIntervalMs: folder.mastering.pollIntervalSeconds * 1000,
    timeoutMs: folder.mastering.timeoutMinutes * 60_000,
    ...(folder.mastering.onDone ? { onDone: folder.mastering.onDone } : {}),
  };
}

/**
 * Where one mix's masters go: a folder named after the mix's whole path in
 * its watched folder (`clientA/Song.wav/`), inside the outputDir. Song.wav
 * and Song.mp3, or two clients' Song.wav, never share one.
 */
export function mixMastersDirectory(outputDir: string, mix: Pick<Job, 'folder' | 'path'>): string {
  return join(outputDir, relative(mix.folder, mix.path));
}

/**
 * Where this machine puts a job's masters. A plan made by a daemon that
 * mounts the share elsewhere names an outputDir on that machine's mount: one
 * inside the folder is the same place here, under this machine's mount of
 * it. One outside the folder is taken as it is: such a path must be the same
 * on every machine (README "Several machines, one share").
 */
export function mastersDirectoryFor(plan: MasteringPlan, job: Pick<Job, 'folder' | 'path'>): string {
  const { folder } = plan;
  const outputDir = folder !== undefined && folder !== job.folder && isInside(folder, plan.outputDir) ? join(job.folder, relative(folder, plan.outputDir)) : plan.outputDir;
  return mixMastersDirectory(outputDir, job);
}

/**
 * What a job is mastered with: the plan stored on its row (by `upload
 * --master`, or when its upload was stored), else its folder's `mastering:`
 * block as configured now (rows from before migration 008, a folder's file
 * not yet stored).
 */
export function planFor(job: Job, folders: readonly FolderConfig[]): MasteringPlan | undefined {
  return storedPlan(job) ?? masteringPlan(folders, job);
}

/** The plan stored on the row; only this program writes it. */
export function storedPlan(job: Pick<Job, 'masteringPlan'>): MasteringPlan | undefined {
  return (job.masteringPlan ?? undefined) as MasteringPlan | undefined;
}

/** The Session-Id the API masters: a duplicate's bytes are stored under its original's. */
async function masteredSession(job: Job, store: JobStore): Promise<string> {
  return job.duplicateOf === null ? job.sessionId : (await store.get(job.duplicateOf)).sessionId;
}

/** A mastering step that cannot succeed by trying again: the job needs a person (`retry`). */
export class MasteringError extends CryomixWatchError {
  constructor(message: string) {
    super('MASTERING_FAILED', message);
  }
}

/**
 * Runs the next step of a `mastering` or `downloading` job: start or poll
 * the mastering job, or fetch the results. Every step commits what it
 * learnt before the call it enables, and schedules the next one through
 * `next_attempt_at`, so a restart picks up exactly where it stopped.
 */
export async function runMasteringStep(jobId: number, context: MasteringContext, signal: AbortSignal): Promise<void> {
  const { store } = context;
  // Another process (the daemon, `upload --master`) working on this job keeps it until its claim lapses.
  if (!(await store.claimStep(jobId))) return;
  const job = await store.get(jobId);
  const claim = holdClaim(() => store.claimStep(job.id), signal);
  try {
    const plan = context.plan(job);
    if (!plan) {
      // Left for whoever knows the plan (an `upload --master` run, or the block added back), not failed.
      await store.updateStep(job.id, {
        nextAttemptAt: Date.now() + UNPLANNED_RECHECK_MS,
        error: `${job.folder} has no mastering block: run "cryomix-watch upload --master" on this file to finish it, or add the block back`,
      });
      return;
    }
    if (job.state === 'mastering') {
      await stepMastering(job, plan, context, claim.signal);
    } else {
      await stepDownloading(job, plan, context, claim.signal);
    }
  } catch (error) {
    await fileStepFailure(job, claim.storeFailure ?? error, context, claim.signal);
  } finally {
    claim.release();
  }
  if (claim.storeFailure !== undefined) throw claim.storeFailure;
}

async function stepMastering(job: Job, plan: MasteringPlan, context: MasteringContext, signal: AbortSignal): Promise<void> {
  const { store, api } = context;
  const session = await masteredSession(job, store);
  // Asked first when a start may already have been sent: a crash between the call and its commit must not start a second job.
  const progress = job.masteringRequested ? await api.masteringProgress(session) : null;
  if (progress === null) {
    await store.updateStep(job.id, { masteringRequested: true });
    await store.durable();
    await startOnce(session, plan, context, signal);
    await store.updateStep(job.id, { masteringStatus: 'pending', masteringPercent: 0, stepFailures: 0, error: null, nextAttemptAt: Date.now() + plan.pollIntervalMs });
    const original = session === job.sessionId ? '' : ` (the same bytes as an earlier upload: mastered as Session-Id ${session})`;
    context.logger.info({ file: job.path, sessionId: job.sessionId, masteredSessionId: session }, `${basename(job.path)}: mastering started${original}`);
    return;
  }
  if (progress.status === 'completed') {
    await store.transition(job.id, 'downloading', { masteringStatus: 'completed', masteringPercent: 100, stepFailures: 0, error: null, nextAttemptAt: Date.now() });
    return;
  }
  if (progress.status === 'failed' || progress.status === 'cancelled') {
    await store.transition(job.id, 'failed', {
      masteringStatus: progress.status,
      error: `the Cryo-mix API reports the mastering job ${progress.status}; run "cryomix-watch retry" to start it again`,
    });
    return;
  }
  // The row became `mastering` when its upload was stored; steps do not move updated_at.
  const runningMs = Date.now() - job.updatedAt;
  const lasted = `${progress.status} for ${inMinutes(runningMs)} min`;
  const limit = `mastering.timeoutMinutes, ${inMinutes(plan.timeoutMs)} min`;
  if (runningMs > plan.timeoutMs) {
    // Started afresh by `retry`: the API's job is left to its fate, and a new start is asked for (a refused one is polled again).
    await store.transition(job.id, 'failed', { masteringStatus: progress.status, masteringRequested: false, error: `the Cryo-mix API kept the mastering job ${lasted}, past ${limit}; run "cryomix-watch retry" to ask for it again` });
    context.logger.warn({ file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: mastering ${lasted}, past ${limit}: marked failed`);
    return;
  }
  const late = runningMs > plan.timeoutMs / 2;
  const lateNote = `mastering is slow: ${lasted}; it is marked failed at ${limit}`;
  // Said once in the log; the row's note (list, status page) keeps it current.
  if (late && !job.error?.startsWith('mastering is slow')) context.logger.warn({ file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: ${lateNote}`);
  const slow = runningMs > SLOW_JOB_MS;
  await store.updateStep(job.id, {
    masteringStatus: progress.status,
    masteringPercent: Math.round(progress.percentComplete),
    stepFailures: 0,
    error: late ? lateNote : null,
    nextAttemptAt: Date.now() + (slow ? Math.max(SLOW_POLL_MS, plan.pollIntervalMs) : plan.pollIntervalMs),
  });
}

/** Minutes, to a tenth under ten. */
function inMinutes(ms: number): string {
  const minutes = ms / 60_000;
  return minutes < 10 ? minutes.toFixed(1) : String(Math.round(minutes));
}

/**
 * A start the API refuses because the job exists already is the one asked
 * for before a crash, or, for a duplicate, its original's: it is followed.
 */
async function startOnce(session: string, plan: MasteringPlan, context: MasteringContext, signal: AbortSignal): Promise<void> {
  try {
    await context.api.startMastering(session, plan.settings, signal);
  } catch (error) {
    if (error instanceof RejectedError && (await context.api.masteringProgress(session)) !== null) return;
    throw error;
  }
}

/**
 * Fetches the results still missing, then the job is done, and its onDone
 * hook due, in one commit. Each result is recorded as soon as it is in
 * place; one recorded but no longer on disk is fetched again. Their names
 * are made durable before `done`, and a failed sync is retried without a
 * second download.
 */
async function stepDownloading(job: Job, plan: MasteringPlan, context: MasteringContext, signal: AbortSignal): Promise<void> {
  const { store, api } = context;
  const download = context.download ?? downloadFile;
  for (const recorded of await store.downloads(job.id)) {
    if (!(await holdsResult(recorded))) await store.forgetDownload(job.id, recorded.name);
  }
  const fetched = new Set((await store.downloads(job.id)).map((d) => d.name));
  const missing = plan.files.filter((name) => !fetched.has(name));
  const directory = mastersDirectoryFor(plan, job);
  const session = await masteredSession(job, store);
  // Requested just before use: the URLs expire.
  let urls = missing.length > 0 ? await api.requestDownloadUrls(session, context.urlExpirySeconds, signal) : new Map<string, SignedDownload>();
  let refreshes = 0;
  for (const name of missing) {
    for (;;) {
      const target = urls.get(name);
      if (!target) throw new MasteringError(`the Cryo-mix API offered no ${name} for this mix (it offered ${[...urls.keys()].join(', ') || 'nothing'})`);
      try {
        const result = await download({ url: target.url, directory, fileName: name, partialTag: job.sessionId, stallTimeoutMs: context.stallTimeoutMs, signal, ...(context.throttle ? { throttle: context.throttle } : {}) });
        await store.recordDownload(job.id, { name, path: result.path, bytes: result.bytes, sha256: result.sha256 });
        break;
      } catch (error) {
        const expired = error instanceof StorageError && (error.storageCode === 'ExpiredToken' || error.statusCode === 403);
        if (!expired || refreshes >= MAX_URL_REFRESHES) throw error;
        refreshes++;
        urls = await api.requestDownloadUrls(session, context.urlExpirySeconds, signal);
      }
    }
  }
  await syncPlaced((await store.downloads(job.id)).map((d) => d.path));
  const onDone = plan.onDone ? [doneHookFollowUp({ argv: plan.onDone, masters: directory, mix: job.path, sessionId: job.sessionId })] : [];
  await store.transition(job.id, 'done', { stepFailures: 0, error: null }, onDone);
  await store.durable();
  context.logger.info({ file: job.path, masters: directory }, `${basename(job.path)}: masters are in ${directory}`);
}

/** The recorded result is still where it was put, whole. */
async function holdsResult(recorded: Download): Promise<boolean> {
  try {
    return (await stat(recorded.path)).size === recorded.bytes;
  } catch (error) {
    if (isGone(error)) return false;
    throw error;
  }
}

/** Transient trouble waits and tries the same step again; a refusal fails the job; a broken state DB stops the daemon. */
async function fileStepFailure(job: Job, error: unknown, context: MasteringContext, signal: AbortSignal): Promise<void> {
  const { store } = context;
  if (isStoreError(error)) throw error;
  const message = error instanceof Error ? error.message : String(error);
  if (signal.aborted) {
    // Taken over by another process: the row is theirs now. Otherwise a shutdown: due again at the next start.
    if (!(signal.reason instanceof SupersededAbort)) await store.updateStep(job.id, { nextAttemptAt: Date.now() });
  } else if (error instanceof UnauthorizedError) {
    await store.updateStep(job.id, { nextAttemptAt: Date.now(), error: message });
    context.onUnauthorized(error);
  } else if (error instanceof TransientError || isFileSystemError(error)) {
    const failures = job.stepFailures + 1;
    const retryAfterMs = error instanceof TransientError ? error.retryAfterMs : undefined;
    await store.updateStep(job.id, { stepFailures: failures, nextAttemptAt: Date.now() + retryDelayMs(context.backoff, failures, retryAfterMs), error: message });
    if (job.state === 'downloading' && Date.now() - job.updatedAt > DOWNLOAD_WARNING_MS) {
      context.logger.warn({ file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: its masters have waited more than a day to be downloaded; Cryo-mix deletes them 7 days after mastering`);
    }
  } else {
    if (!(error instanceof CryomixWatchError)) context.logger.error({ err: error, file: job.path, sessionId: job.sessionId }, `${basename(job.path)}: unexpected error while mastering`);
    await store.transition(job.id, 'failed', { error: message });
  }
}
