import type { Job } from '../store/job.js';
import type { JobStore } from '../store/jobs.js';

/**
 * `retry`: sends a failed version back to the step that failed, with the
 * same Session-Id: the upload if its bytes never reached storage, else the
 * download if mastering had completed, else mastering (started anew).
 * Conditional, because the daemon may file the row at the same moment.
 */
export function rearm(store: JobStore, job: Job): Job | undefined {
  const now = Date.now();
  if (job.md5 === null) return store.transitionIf(job.id, 'failed', 'queued', () => ({ error: null, nextAttemptAt: null }));
  if (job.masteringStatus === 'completed') {
    return store.transitionIf(job.id, 'failed', 'downloading', () => ({ error: null, nextAttemptAt: now, stepFailures: 0 }));
  }
  return store.transitionIf(job.id, 'failed', 'mastering', () => ({ error: null, nextAttemptAt: now, stepFailures: 0, masteringRequested: false }));
}
