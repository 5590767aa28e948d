import { basename, dirname, resolve } from 'node:path';
import { CryomixWatchError } from '../errors.js';
import type { Job } from '../store/job.js';
import { FINAL_STATES } from '../store/states.js';
import { statFile, type FileStat } from '../watch/settle.js';
import { admit, type Admission } from './admit.js';
import { uploadJob } from './upload.js';
import { createUploadContext, type UploadParts } from './uploadContext.js';
import { errnoCode } from '../files/errno.js';
import { isInside, sameVersion, unreadableReason } from './version.js';

/** A one-shot command should not sit in a terminal through an hour of backoff; the daemon can carry on later. */
const FOREGROUND_ATTEMPTS = 5;

export class NotUploadableError extends CryomixWatchError {
  /** The reason alone, for output that already names the file. */
  readonly reason: string;

  constructor(path: string, reason: string) {
    super('NOT_UPLOADABLE', `${path}: ${reason}`);
    this.reason = reason;
  }
}

/**
 * `upload FILE`: the daemon's rules and state DB, in the foreground. The
 * caller says the file is finished, so there is no settle wait, but the
 * content checks still apply. Retries transient errors a few times, then
 * leaves the job `retrying` for the daemon to finish.
 */
export async function uploadOnce(file: string, parts: UploadParts, signal: AbortSignal, onWait?: (job: Job, delayMs: number) => void): Promise<Job> {
  const { store, config } = parts;
  const path = resolve(file);
  const found = await statFile(path);
  if (!found) throw new NotUploadableError(path, 'no such file (or not a regular file)');
  const { size, mtimeMs } = found;
  let job = store.current(path);
  if (job?.state === 'failed' && sameVersion(job, { size, mtimeMs })) {
    job = store.transition(job.id, 'queued', { error: null });
  } else if (!job || !sameVersion(job, { size, mtimeMs }) || (FINAL_STATES.includes(job.state) && job.state !== 'done')) {
    const folder = config.folders.find((f) => isInside(f.path, path))?.path ?? dirname(path);
    job = store.createVersion({ folder, path, size, mtimeMs });
  }
  if (job.state === 'waiting') {
    const admission = await admitOrFile(parts, job, { size, mtimeMs });
    if (admission.outcome === 'incomplete') throw new NotUploadableError(path, `${admission.reason}; wait until the export has finished`);
    if (admission.outcome === 'rejected') throw new NotUploadableError(path, admission.reason);
  }
  let changedDuringUpload = false;
  const context = createUploadContext(parts, {
    onStale: () => {
      changedDuringUpload = true;
    },
    onUnauthorized: (error) => {
      throw error;
    },
  });
  for (let attempt = 1; ; attempt++) {
    job = store.get(job.id);
    if (job.state === 'retrying') {
      if (attempt > FOREGROUND_ATTEMPTS) return job;
      const delayMs = Math.max(0, (job.nextAttemptAt ?? 0) - Date.now());
      onWait?.(job, delayMs);
      await sleep(delayMs, signal);
      if (signal.aborted) return job;
      job = store.transitionIf(job.id, 'retrying', 'queued') ?? store.get(job.id);
    }
    if (job.state !== 'queued') return job;
    await uploadJob(job.id, context, signal);
    if (signal.aborted) return store.get(job.id);
    if (changedDuringUpload) {
      throw new NotUploadableError(path, `${basename(path)} changed while it was being uploaded; run the command again once it is finished`);
    }
  }
}

/** Like the daemon's intake, a file that cannot be read is filed with the reason, never left `waiting`. */
async function admitOrFile(parts: UploadParts, job: Job, fileStat: FileStat): Promise<Admission> {
  try {
    return await admit(parts.store, job, fileStat, parts.config.uploads);
  } catch (error) {
    const reason = errnoCode(error) === 'ENOENT' ? 'the file disappeared before it was uploaded' : unreadableReason(error);
    if (reason === undefined) throw error;
    parts.store.transition(job.id, errnoCode(error) === 'ENOENT' ? 'removed' : 'rejected', { error: reason });
    return { outcome: 'rejected', reason };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveSleep) => {
    const timer = setTimeout(resolveSleep, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolveSleep();
    }, { once: true });
  });
}
