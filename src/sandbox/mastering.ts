import { z } from 'zod';
import type { MasteringJob } from './state.js';

const adjustment = z.number().min(-5).max(5).optional();

/** The vendor's documented ranges; unknown fields are ignored as a JSON API would. */
export const masteringSettingsSchema = z.object({
  mwa: adjustment,
  meq: z.number().min(0).max(10).optional(),
  mha: adjustment,
  mma: adjustment,
  mla: adjustment,
  mca: adjustment,
});

export type MasteringSettings = z.infer<typeof masteringSettingsSchema>;

export const RESULT_FILES = ['FinalMaster.wav', 'FinalMaster.mp3', 'MasteringReport.json', 'OriginalMix.mp3'] as const;

export type ResultFile = (typeof RESULT_FILES)[number];

export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** Where a job is headed from its start; the faults pick the last two. */
export type JobEnding = 'completed' | 'failed' | 'stuck-pending';

export interface JobProgress {
  status: JobStatus;
  percentage_complete: number;
}

/** The first tenth of the run is spent queued, as a real job waits for a worker. */
const PENDING_SHARE = 0.1;

/** Where a job stands `now`, computed from its start time alone. */
export function jobProgress(job: MasteringJob, now: number, masteringSeconds: number): JobProgress {
  if (job.ending === 'stuck-pending') return { status: 'pending', percentage_complete: 0 };
  const total = masteringSeconds * 1000;
  const elapsed = now - job.startedAt;
  if (elapsed >= total) {
    // A failed job reports where processing stopped, short of 100.
    if (job.ending === 'failed') return { status: 'failed', percentage_complete: 99 };
    return { status: 'completed', percentage_complete: 100 };
  }
  const pending = total * PENDING_SHARE;
  if (elapsed < pending) return { status: 'pending', percentage_complete: 0 };
  const percent = Math.floor(((elapsed - pending) / (total - pending)) * 100);
  return { status: 'processing', percentage_complete: Math.min(99, Math.max(0, percent)) };
}

/** A job blocks a new start unless it ended badly. */
export function canRestart(job: MasteringJob | undefined, now: number, masteringSeconds: number): boolean {
  return job === undefined || jobProgress(job, now, masteringSeconds).status === 'failed';
}
