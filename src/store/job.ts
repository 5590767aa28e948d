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
  /** Until when that process's claim holds unless renewed (epoch ms). */
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

/** Fields a transition may set alongside the new state. */
export interface TransitionPatch {
  error?: string | null;
  nextAttemptAt?: number | null;
  sha256?: string;
  md5?: string;
  attempts?: number;
  duplicateOf?: number;
  bytesSent?: number;
  uploadFolder?: string;
  ownerPid?: number;
  leaseUntil?: number;
}

export interface TransitionEvent {
  job: Job;
  /** null when the row was just created (a new file version was seen). */
  from: State | null;
  /** Time spent in `from`. */
  durationMs: number;
}

export interface PauseState {
  reason: string;
  since: number;
}
