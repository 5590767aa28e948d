import type { Job } from '../store/job.js';
import type { JobStore } from '../store/store.js';

/**
 * `retry`: sends a failed version back to the step that failed, with the
 * same Session-Id: the upload if its bytes never reached storage, else the
 * download if mastering had completed, else mastering (started anew only if
 * the API reported the job failed or cancelled).
 * Conditional, because the daemon may file the row at the same moment.
 */
export async function rearm(store: JobStore, job: Job): Promise<Job | undefined> {
  const now = Date.now();
  // Stored: sent by this row (storage's MD5 recorded), or the same bytes as an upload already stored.
  const stored = job.md5 !== null || job.duplicateOf !== null;
  if (!stored) return store.transitionIf(job.id, 'failed', 'queued', () => ({ error: null, nextAttemptAt: null }));
  if (job.masteringStatus === 'completed') {
    return store.transitionIf(job.id, 'failed', 'downloading', () => ({ error: null, nextAttemptAt: now, stepFailures: 0 }));
  }
  // A new start only when the API said the job failed: otherwise one may be running, and is asked about first.
  const startAnew = job.masteringStatus === 'failed' || job.masteringStatus === 'cancelled';
  return store.transitionIf(job.id, 'failed', 'mastering', () => ({ error: null, nextAttemptAt: now, stepFailures: 0, ...(startAnew ? { masteringRequested: false } : {}) }));
}
