import type { State } from './states.js';

/** One file version as stored; the Session-Id belongs to exactly this version. */
export interface Job {
  id: number;
  sessionId: string;
  folder: string;
  path: string;
  size: number;
  mtimeMs: number;
  sha256: string | null;
  md5: string | null;
  state: State;
  current: boolean;
  attempts: number;
  nextAttemptAt: number | null;
  error: string | null;
  duplicateOf: number | null;
  bytesSent: number;
  uploadFolder: string | null;
  /** The process uploading this row, while `uploading`. */
  ownerPid: number | null;
  /** The machine that process runs on (or last ran on), when several share the queue (PostgreSQL); null on one machine's SQLite. */
  ownerHost: string | null;
  /** Until when that process's claim holds unless renewed (epoch ms). */
  leaseUntil: number | null;
  /** POST /api/mastering may have been sent for this version. */
  masteringRequested: boolean;
  /** The API's last word on the mastering job: pending, processing, completed, failed, cancelled. */
  masteringStatus: string | null;
  masteringPercent: number | null;
  /** Consecutive transient failures of the current mastering or download step, for its backoff. */
  stepFailures: number;
  /** What the row is mastered with, as stored when mastering was asked for (JSON, read by the pipeline); null before. */
  masteringPlan: unknown;
  createdAt: number;
  updatedAt: number;
}

/** Fields a transition may set alongside the new state. */
export interface TransitionPatch {
  error?: string | null;
  nextAttemptAt?: number | null;
  sha256?: string;
  /**
   * SHA-256 of the first 64 KiB: rules out most same-size files as duplicates
   * without hashing them whole. While `uploading`, the beginning this row holds (null: none yet).
   */
  headSha256?: string | null;
  md5?: string;
  attempts?: number;
  duplicateOf?: number;
  bytesSent?: number;
  uploadFolder?: string;
  masteringRequested?: boolean;
  masteringStatus?: string;
  masteringPercent?: number;
  stepFailures?: number;
  masteringPlan?: unknown;
}

export interface TransitionEvent {
  job: Job;
  /** null when the row was just created (a new file version was seen). */
  from: State | null;
  /** Time spent in `from`. */
  durationMs: number;
}

/** What a transition counts for, in the summary line and in /metrics alike: bytes stored (a duplicate's were not sent), a file done, a file failed. */
export function activityOf({ job, from }: TransitionEvent): { stored: boolean; done: boolean; failed: boolean } {
  return { stored: from === 'uploading' && job.state === 'uploaded' && job.duplicateOf === null, done: job.state === 'done', failed: job.state === 'failed' };
}

/** What an upload attempt may do with its file's bytes (JobStore.reserveUpload). */
export type UploadReservation =
  /** No other file of the folder is sending these bytes: this row holds them until its attempt ends. */
  | { kind: 'send' }
  /** The same bytes are stored already, from `original`. */
  | { kind: 'duplicate'; original: Job }
  /** `holder` is sending a file of the same size and beginning: probably the same bytes. */
  | { kind: 'wait'; holder: Job }
  /** A stored upload has the same size and beginning: only the whole file's sha256 can tell. */
  | { kind: 'hash' }
  /** The row is no longer this process's upload (replaced, removed, or taken over after a long pause): its attempt is over. */
  | { kind: 'lost' };

export interface PauseState {
  reason: string;
  since: number;
}

export const FOLDER_PROBLEMS = ['not answering', 'unmounted', 'not there'] as const;

/** Why a watched folder is not watched as it should be, since when (epoch ms). */
export interface FolderProblem {
  problem: (typeof FOLDER_PROBLEMS)[number];
  since: number;
}

export interface FolderState {
  path: string;
  problem: FolderProblem | undefined;
}

/** A result file downloaded for a job, and where it was put. */
export interface Download {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
}

/** Work due once a file is safe: the folder's after-upload move or delete, the mastering.onDone hook. */
export const FOLLOW_UP_KINDS = ['after-upload', 'on-done'] as const;
export type FollowUpKind = (typeof FOLLOW_UP_KINDS)[number];

/** A pending follow-up (migration 008). Deleted once it has run. */
export interface FollowUp {
  jobId: number;
  kind: FollowUpKind;
  /** What to do, as the pipeline stored it (JSON). */
  plan: unknown;
  dueAt: number;
  /** Consecutive failed runs, for the backoff. */
  failures: number;
  /** Why the last run failed. */
  error: string | null;
  /** The process running it, until `leaseUntil` unless renewed. */
  ownerPid: number | null;
  leaseUntil: number | null;
}
