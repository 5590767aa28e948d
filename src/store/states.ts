import { CryomixWatchError } from '../errors.js';

/**
 * The life of one file version. This table is the only place that says which
 * moves are legal; `JobStore.transition` is the only code that writes `state`.
 */
export const STATES = [
  'waiting', 'queued', 'uploading', 'uploaded', 'mastering', 'downloading', 'done',
  'retrying', 'failed', 'rejected', 'removed',
] as const;
export type State = (typeof STATES)[number];

const ALLOWED: Readonly<Record<State, readonly State[]>> = {
  // settling on disk; leaves when complete, invalid, or gone
  waiting: ['queued', 'rejected', 'removed'],
  queued: ['uploading', 'removed'],
  // uploaded: stored now, or the same bytes were already stored from this folder (dedupe);
  // queued: the API key was refused, the job waits for the pause to lift
  uploading: ['uploaded', 'retrying', 'failed', 'queued', 'rejected', 'removed'],
  retrying: ['queued', 'removed'],
  // mastering: the folder asks for masters
  uploaded: ['done', 'mastering'],
  mastering: ['downloading', 'failed'],
  downloading: ['done', 'failed'],
  // `retry` re-arms the step that failed: the upload, the mastering or the download
  failed: ['queued', 'mastering', 'downloading', 'removed'],
  // `upload --master` on a stored upload: the API masters the bytes it already holds
  done: ['mastering'],
  rejected: [],
  // the same version came back (moved out and in again, a share remounted)
  removed: ['waiting'],
};

/** States after which nothing more happens to the row without a person or a new file version. */
export const FINAL_STATES: readonly State[] = ['done', 'failed', 'rejected', 'removed'];

export class IllegalTransitionError extends CryomixWatchError {
  constructor(jobId: number, from: State, to: State) {
    super('ILLEGAL_TRANSITION', `job ${jobId}: a ${from} file cannot become ${to} (this is a bug, please report it)`);
  }
}

export function assertTransition(jobId: number, from: State, to: State): void {
  if (!ALLOWED[from].includes(to)) throw new IllegalTransitionError(jobId, from, to);
}
