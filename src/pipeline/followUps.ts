import { basename } from 'node:path';
import type { Logger } from 'pino';
import { isStoreError } from '../store/failures.js';
import type { FollowUp, Job } from '../store/job.js';
import type { JobStore, NewFollowUp } from '../store/store.js';
import { applyAfterUpload, NotTheUploadedVersionError, type AfterUpload, type DueAfterUpload } from './afterUpload.js';
import { retryDelayMs, type BackoffPolicy } from './backoff.js';
import { holdClaim } from './claim.js';
import { runDoneHook, type DoneHook } from './hook.js';
import type { FolderAccess } from './upload.js';
import { CryomixWatchError } from '../errors.js';

export interface FollowUpContext {
  store: JobStore;
  logger: Logger;
  backoff: BackoffPolicy;
  /** The folder's afterUpload setting now: for moves that failed before migration 008, stored without a plan. */
  afterUpload(job: Job): AfterUpload;
  /** The watched folder a job's file is in, as the daemon sees it; none for `upload FILE`. */
  folderOf?(job: Job): FolderAccess | undefined;
}

/** The folder's after-upload step, made due by the move that stores the upload. */
export function afterUploadFollowUps(plan: AfterUpload): NewFollowUp[] {
  return plan.action === 'keep' ? [] : [{ kind: 'after-upload', plan }];
}

/** The onDone hook, made due by the move to done. */
export function doneHookFollowUp(hook: DoneHook): NewFollowUp {
  return { kind: 'on-done', plan: hook };
}

/**
 * Runs one due follow-up, unless another live process is running it. It
 * stays pending until it has run: a failure is tried again with backoff,
 * a shutdown or a crash leaves it due for the next start. So each runs at
 * least once, and, short of a crash mid-run, exactly once.
 */
export async function runFollowUp(due: Pick<FollowUp, 'jobId' | 'kind'>, context: FollowUpContext, signal: AbortSignal): Promise<void> {
  const { store } = context;
  // Due still: another process may have run it, or postponed it, since it was found due.
  const followUp = await store.claimFollowUp(due.jobId, due.kind, { mustBeDue: true });
  if (!followUp) return;
  const job = await store.get(followUp.jobId);
  // What made it due (the upload stored, the masters placed) is on disk before the file is moved or the hook told.
  await store.durable();
  const claim = holdClaim(async () => (await store.claimFollowUp(followUp.jobId, followUp.kind, { mustBeDue: false })) !== undefined, signal);
  try {
    const finished = followUp.kind === 'after-upload' ? await afterUpload(job, afterUploadOf(followUp, job, context), context) : await runDoneHook(followUp.plan as DoneHook, context.logger, claim.signal);
    if (finished) await store.finishFollowUp(job.id, followUp.kind);
    else await store.postponeFollowUp(job.id, followUp.kind, { dueAt: Date.now() });
  } catch (error) {
    if (isStoreError(error)) throw error;
    await fileFailure(job, followUp, error, context);
  } finally {
    claim.release();
  }
  if (claim.storeFailure !== undefined) throw claim.storeFailure;
}

/** Runs a job's follow-ups that are due now, in the foreground (`upload FILE`); those that fail stay pending for the daemon. */
export async function runDueFollowUps(jobId: number, context: FollowUpContext, signal: AbortSignal): Promise<void> {
  for (const followUp of await context.store.followUps(jobId)) {
    if (followUp.dueAt <= Date.now() && !signal.aborted) await runFollowUp(followUp, context, signal);
  }
}

/**
 * What an after-upload follow-up does: its stored plan; or the folder's
 * setting now, on this machine, when it was stored without one (before
 * migration 008) or by a machine that mounts the share elsewhere (its paths
 * are that machine's: a move there would put the file where nobody looks).
 */
function afterUploadOf(followUp: FollowUp, job: Job, context: FollowUpContext): AfterUpload {
  const plan = followUp.plan as DueAfterUpload | null;
  if (plan === null || (plan.action === 'move' && plan.folder !== job.folder)) return context.afterUpload(job);
  return plan;
}

/** Moves or deletes the uploaded file; true once nothing is left to do. */
async function afterUpload(job: Job, plan: AfterUpload, context: FollowUpContext): Promise<true> {
  if (plan.action === 'keep') return true;
  const folder = context.folderOf?.(job);
  const name = basename(job.path);
  try {
    const outcome = await applyAfterUpload(job.path, plan, job, folder?.run);
    if (outcome.kind === 'gone' && folder && !(await folder.rootPresent())) throw new FolderAwayError(job.folder);
    if (outcome.kind === 'moved') context.logger.info({ file: job.path, movedTo: outcome.to }, `${name}: moved to ${outcome.to}`);
    else context.logger.info({ file: job.path }, `${name}: ${outcome.kind === 'deleted' ? 'deleted after upload' : `no longer there, nothing to ${plan.action}`}`);
  } catch (error) {
    if (!(error instanceof NotTheUploadedVersionError)) throw error;
    // Nothing to retry: the file at the path is not the one uploaded, and is left for its own upload.
    await context.store.annotate(job.id, error.message);
    context.logger.info({ file: job.path }, error.message);
  }
  return true;
}

/** An unmounted share's files are not gone: the step waits for it. */
class FolderAwayError extends CryomixWatchError {
  constructor(folder: string) {
    super('FOLDER_AWAY', `its folder ${folder} is not there (unmounted?)`);
  }
}

/** Every failure is worth another try (a full disk, a lock, permissions being fixed); the step stays pending, with its reason. */
async function fileFailure(job: Job, followUp: FollowUp, error: unknown, context: FollowUpContext): Promise<void> {
  const failures = followUp.failures + 1;
  const dueAt = Date.now() + retryDelayMs(context.backoff, failures);
  const what = followUp.kind === 'after-upload' ? afterUploadOf(followUp, job, context).action : 'onDone hook';
  const message = `${what} pending: ${error instanceof Error ? error.message : String(error)}`;
  await context.store.postponeFollowUp(job.id, followUp.kind, { dueAt, failures, error: message });
  context.logger.warn(
    { err: error, file: job.path, sessionId: job.sessionId, failures, nextTryAt: new Date(dueAt).toISOString() },
    `${basename(job.path)}: ${message}; tried again in ${Math.ceil((dueAt - Date.now()) / 1000)} s`,
  );
}
