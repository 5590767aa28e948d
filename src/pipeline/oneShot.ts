import { basename, dirname, join, resolve } from 'node:path';
import { isInside, type Config } from '../config/index.js';
import { CryomixWatchError } from '../errors.js';
import type { Job } from '../store/job.js';
import { FINAL_STATES } from '../store/states.js';
import { putFile } from '../transfer/put.js';
import { statFile, type FileStat } from '../watch/settle.js';
import { admit, type Admission } from './admit.js';
import { holdClaim } from './claim.js';
import { folderFilter } from './folder.js';
import { masteringPlan, mixMastersDirectory, runMasteringStep, storedPlan, type MasteringContext, type MasteringPlan } from './master.js';
import { rearm } from './rearm.js';
import { finishStored, uploadJob, type UploadContext } from './upload.js';
import { runDueFollowUps } from './followUps.js';
import { createMasteringContext, createUploadContext, type Throttles, type UploadParts } from './uploadContext.js';
import { Throttle, type ByteRate } from '../transfer/throttle.js';
import { limitAt, type LimitInForce } from '../transfer/timetable.js';
import { untilText } from './bandwidth.js';
import { errnoCode } from '../files/errno.js';
import { sameVersion, unreadableReason } from './version.js';

/** A one-shot command should not sit in a terminal through an hour of backoff; the daemon can carry on later. */
const FOREGROUND_ATTEMPTS = 5;

/**
 * Waits for an identical file's upload are no failed attempts, but a twin
 * left `retrying` by a daemon that is not running now may never be sent:
 * after this many waits the command leaves the file to the daemon.
 */
const FOREGROUND_TWIN_WAITS = 30;
/** How often the progress of a job another process is working on is read from its row. */
const FOLLOW_MS = 1_000;

export class NotUploadableError extends CryomixWatchError {
  /** The reason alone, for output that already names the file. */
  readonly reason: string;

  constructor(path: string, reason: string) {
    super('NOT_UPLOADABLE', `${path}: ${reason}`);
    this.reason = reason;
  }
}

/** `upload --master` of a file outside every folder with a `mastering:` block: the block's defaults (and the API's default settings). */
export const DEFAULT_MASTER_FILES: readonly string[] = ['FinalMaster.wav', 'MasteringReport.json'];
export const DEFAULT_POLL_INTERVAL_MS = 5_000;
/** As the config's mastering.timeoutMinutes default. */
const DEFAULT_MASTERING_TIMEOUT_MS = 240 * 60_000;

/**
 * The plan for `upload FILE --master`: the `mastering:` block of the
 * configured folder holding the file, else default settings; `outDir`
 * (default: the current directory for the defaults) overrides the folder's
 * outputDir. It is stored on the row, so the daemon finishes the job with
 * it if this command cannot.
 */
export function oneShotPlan(config: Config, file: string, outDir: string | undefined): MasteringPlan {
  const path = resolve(file);
  const folder = config.folders.find((f) => isInside(f.path, path));
  const fromFolder = folder?.mastering ? masteringPlan(config.folders, { folder: folder.path }) : undefined;
  const defaults = { settings: {}, outputDir: resolve(outDir ?? process.cwd()), files: DEFAULT_MASTER_FILES, pollIntervalMs: DEFAULT_POLL_INTERVAL_MS, timeoutMs: DEFAULT_MASTERING_TIMEOUT_MS };
  const plan = fromFolder === undefined ? defaults : { ...fromFolder, ...(outDir === undefined ? {} : { outputDir: resolve(outDir) }) };
  // The config refuses such an outputDir; --out and the current directory are only known here.
  const masters = mixMastersDirectory(plan.outputDir, { folder: folder?.path ?? dirname(path), path });
  const watcher = config.folders.find((f) => {
    if (!isInside(f.path, masters)) return false;
    const filter = folderFilter(f);
    return plan.files.some((name) => !filter.isIgnored(join(masters, name)));
  });
  if (watcher) {
    throw new NotUploadableError(path, `its masters would go to ${masters}, which the daemon watches (in ${watcher.path}) and would upload again: choose a folder outside it with --out`);
  }
  return plan;
}

export interface OneShotOptions {
  /** `upload --limit`: the upload cap for this command, instead of the configured one in force now (see oneShotThrottles). */
  limit?: ByteRate;
  /**
   * `upload --master`: once stored, the file is mastered with this plan
   * (stored on the row; one an earlier run already started mastering with
   * wins), whatever its folder's config says, and the command follows the
   * mastering and download steps to the end.
   */
  master?: MasteringPlan;
  /** A failed attempt (upload or mastering step) is tried again in `delayMs`. */
  onWait?(job: Job, delayMs: number): void;
  /** The row moved on or made progress (upload bytes, mastering percentage); only with `master`. */
  onProgress?(job: Job): void;
  /** Another live process (the daemon) is working on the job (its upload, or its mastering); this one follows along. */
  onHeld?(job: Job): void;
}

/**
 * `upload FILE`: the daemon's rules and state DB, in the foreground. The
 * caller says the file is finished, so there is no settle wait, but the
 * content checks still apply. Retries transient errors a few times, then
 * leaves the job `retrying` for the daemon to finish. With `master`, goes
 * on through the daemon's own mastering steps (runMasteringStep), driven by
 * the row's next_attempt_at, until the row is done or failed.
 */
export async function uploadOnce(file: string, parts: UploadParts, signal: AbortSignal, options: OneShotOptions = {}): Promise<Job> {
  const { store, config } = parts;
  const { master, onWait } = options;
  const path = resolve(file);
  const throttles = oneShotThrottles(config, options.limit);
  const found = await statFile(path);
  if (!found) throw new NotUploadableError(path, 'no such file (or not a regular file)');
  const { size, mtimeMs } = found;
  let job = await store.current(path);
  if (job?.state === 'failed' && sameVersion(job, { size, mtimeMs })) {
    // With masters asked for, the step that failed is re-armed (as `retry` does): a stored upload is not sent again.
    job = (await rearm(store, job)) ?? (await store.get(job.id));
  } else if (!job || !sameVersion(job, { size, mtimeMs }) || (FINAL_STATES.includes(job.state) && job.state !== 'done')) {
    const folder = config.folders.find((f) => isInside(f.path, path))?.path ?? dirname(path);
    job = await store.createVersion({ folder, path, size, mtimeMs });
  }
  if (master && !job.masteringRequested && job.masteringStatus === null && (await store.downloads(job.id)).length === 0) {
    // Stored first: whoever finishes the job (the daemon, after this command is stopped) masters it with this plan.
    await store.updateStep(job.id, { masteringPlan: master });
    // Uploaded earlier without masters: the API masters the bytes it holds, nothing is sent again.
    if (job.state === 'done') job = (await store.transitionIf(job.id, 'done', 'mastering', () => ({ nextAttemptAt: Date.now(), stepFailures: 0, error: null }))) ?? (await store.get(job.id));
  }
  if (job.state === 'waiting') {
    const admission = await admitOrFile(parts, job, { size, mtimeMs });
    if (admission.outcome === 'incomplete') throw new NotUploadableError(path, `${admission.reason}; wait until the export has finished`);
    if (admission.outcome === 'rejected') throw new NotUploadableError(path, admission.reason);
  }
  // Only sending waits for the pause to end: a stored file's mastering and downloads go on.
  const { pausedBy } = throttles;
  if (pausedBy && ['queued', 'retrying'].includes((await store.get(job.id)).state)) {
    throw new NotUploadableError(path, `uploads are paused (${pausedBy.reason})${untilText(pausedBy.nextChangeAt)}; a running daemon sends it then, or add --limit to send it now`);
  }
  let changedDuringUpload = false;
  const daemonLike = createUploadContext(parts, {
    onStale: () => {
      changedDuringUpload = true;
    },
    onUnauthorized: (error) => {
      throw error;
    },
  }, throttles);
  const context = master ? forcedMastering(daemonLike, job.id, master, options) : daemonLike;
  // Counted on the row: waiting for an identical file's upload is no failed attempt.
  const attemptsBefore = job.attempts;
  let heldBy: number | null = null;
  let waits = 0;
  for (;;) {
    // An upload whose process died (this file's, or an identical file's holding its bytes) is released; no daemon may be running.
    await store.releaseOrphanedUploads(() => false);
    job = await store.get(job.id);
    if (job.state === 'uploading') {
      // Another live process (the daemon, which found the file too) is on this very attempt: its outcome is this command's.
      if (heldBy !== job.ownerPid) options.onHeld?.(job);
      heldBy = job.ownerPid;
      await sleep(FOLLOW_MS, signal);
      if (signal.aborted) return await store.get(job.id);
      continue;
    }
    if (job.state === 'retrying') {
      if (job.attempts - attemptsBefore >= FOREGROUND_ATTEMPTS || ++waits > FOREGROUND_ATTEMPTS + FOREGROUND_TWIN_WAITS) return job;
      const delayMs = Math.max(0, (job.nextAttemptAt ?? 0) - Date.now());
      onWait?.(job, delayMs);
      await sleep(delayMs, signal);
      if (signal.aborted) return job;
      job = (await store.transitionIf(job.id, 'retrying', 'queued')) ?? (await store.get(job.id));
    }
    if (job.state !== 'queued') break;
    if (master) options.onProgress?.(job);
    await uploadJob(job.id, context, signal);
    if (signal.aborted) return await store.get(job.id);
    if (changedDuringUpload) {
      throw new NotUploadableError(path, `${basename(path)} changed while it was being uploaded; run the command again once it is finished`);
    }
  }
  // Stored by a run that stopped before the next step (a crash): on, as the daemon's start-up does.
  if (job.state === 'uploaded') await finishStored(job, context);
  await runDueFollowUps(job.id, context, signal);
  if (!master) return await store.get(job.id);
  const mastering = createMasteringContext(parts, context, {
    // A job whose mastering an earlier run started finishes with that run's plan (its --out), as the daemon would.
    plan: (row) => storedPlan(row) ?? master,
    onUnauthorized: (error) => {
      throw error;
    },
  }, throttles);
  const mastered = await followMastering(job.id, mastering, signal, options);
  // The onDone hook, due once the masters are in place.
  await runDueFollowUps(job.id, context, signal);
  return mastered.state === 'done' ? await store.get(job.id) : mastered;
}

/**
 * The caps for one command: `--limit`, else the upload cap in force as it
 * starts (base or schedule window; a command is short, so it does not follow
 * later boundaries, and caps only itself, not a daemon beside it).
 * `pausedBy`: a pause window is in force and no `--limit` overrides it.
 */
function oneShotThrottles(config: Config, limit: ByteRate | undefined): Throttles & { pausedBy: LimitInForce | undefined } {
  const inForce = limitAt(config.uploads.maxBytesPerSecond, config.uploads.schedule, Date.now());
  const pausedBy = limit === undefined && inForce.limit === 'pause' ? inForce : undefined;
  const uploads = limit !== undefined ? limit : inForce.limit === 'pause' ? null : inForce.limit;
  return { uploads: new Throttle(uploads), downloads: new Throttle(config.downloads.maxBytesPerSecond), pausedBy };
}

/** The daemon's upload context, except that a stored upload goes on to mastering, and upload progress is reported. */
function forcedMastering(context: UploadContext, jobId: number, master: MasteringPlan, options: OneShotOptions): UploadContext {
  const { onProgress } = options;
  return {
    ...context,
    masteringPlan: (row) => storedPlan(row) ?? master,
    put: (request) =>
      putFile({
        ...request,
        onProgress: async (bytesSent) => {
          await request.onProgress?.(bytesSent);
          onProgress?.(await context.store.get(jobId));
        },
      }),
  };
}

/**
 * Runs the job's mastering and download steps in the foreground, each when
 * the row says it is due, until the row is done or failed. Transient trouble
 * is tried a few times, then left for a later run. Interrupted, the row stays
 * where it is, due at once, for whoever runs its steps next. While another
 * live process (the daemon) holds the job, its progress is followed from the
 * row instead.
 */
async function followMastering(jobId: number, context: MasteringContext, signal: AbortSignal, options: OneShotOptions): Promise<Job> {
  const { store } = context;
  let heldBy: number | null = null;
  for (;;) {
    const job = await store.get(jobId);
    if (job.state !== 'mastering' && job.state !== 'downloading') return job;
    options.onProgress?.(job);
    if (!(await store.claimStep(jobId))) {
      if (heldBy !== job.ownerPid) options.onHeld?.(job);
      heldBy = job.ownerPid;
      await sleep(Math.min(FOLLOW_MS, Math.max(0, (job.leaseUntil ?? 0) - Date.now())), signal);
      if (signal.aborted) return await store.get(jobId);
      continue;
    }
    heldBy = null;
    if (job.stepFailures >= FOREGROUND_ATTEMPTS) return job;
    const delayMs = Math.max(0, (job.nextAttemptAt ?? 0) - Date.now());
    if (job.stepFailures > 0) options.onWait?.(job, delayMs);
    // Held while waiting too: a slow job is polled less often than a lease lasts, and the daemon must not take it meanwhile.
    const claim = holdClaim(() => store.claimStep(jobId), signal);
    await sleep(delayMs, claim.signal).finally(() => claim.release());
    if (claim.storeFailure !== undefined) throw claim.storeFailure;
    if (signal.aborted) return await store.get(jobId);
    await runMasteringStep(jobId, context, signal);
    if (signal.aborted) return await store.get(jobId);
  }
}

/** Like the daemon's intake, a file that cannot be read is filed with the reason, never left `waiting`. */
async function admitOrFile(parts: UploadParts, job: Job, fileStat: FileStat): Promise<Admission> {
  try {
    return await admit(parts.store, job, fileStat, parts.config.uploads);
  } catch (error) {
    const reason = errnoCode(error) === 'ENOENT' ? 'the file disappeared before it was uploaded' : unreadableReason(error);
    if (reason === undefined) throw error;
    await parts.store.transitionIf(job.id, 'waiting', errnoCode(error) === 'ENOENT' ? 'removed' : 'rejected', () => ({ error: reason }));
    return { outcome: 'rejected', reason };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolveSleep) => {
    const wake = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', wake);
      resolveSleep();
    };
    const timer = setTimeout(wake, ms);
    signal.addEventListener('abort', wake, { once: true });
  });
}
