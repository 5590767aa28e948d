import type { Job } from '../store/job.js';
import type { JobStore } from '../store/jobs.js';
import { errnoCode } from '../files/errno.js';

/** Signal 0 only asks whether the process exists; EPERM means it does, under another user. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

/** No other live process holds a fresh claim on the job or follow-up (the daemon and `upload FILE` share the DB). */
export function claimAvailable(claim: Pick<Job, 'ownerPid' | 'leaseUntil'>, now = Date.now()): boolean {
  const heldElsewhere = claim.ownerPid !== null && claim.ownerPid !== process.pid && (claim.leaseUntil ?? 0) > now && processAlive(claim.ownerPid);
  return !heldElsewhere;
}

/**
 * Uploads whose uploader is gone (killed, crashed, the machine rebooted)
 * resume as `retrying`, due now, with their own Session-Id. A claim that a
 * live process keeps renewing (`upload FILE` beside the daemon) is left
 * alone; `isOurs` marks the caller's own running uploads.
 */
export function recoverOrphanedUploads(store: JobStore, isOurs: (jobId: number) => boolean, now = Date.now()): void {
  const isOrphaned = (job: Job) => !isOurs(job.id) && claimAvailable(job, now);
  // Judged again within releaseOrphan's transaction; the scheduler asks at every pump, and its own uploads need none.
  for (const job of store.inState('uploading').filter(isOrphaned)) {
    store.releaseOrphan(job.id, isOrphaned, { nextAttemptAt: now, error: 'interrupted while uploading (its uploader stopped); resuming' });
  }
}
