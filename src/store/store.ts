import type { Download, FolderState, FollowUp, FollowUpKind, Job, PauseState, TransitionPatch, UploadReservation } from './job.js';
import { FINAL_STATES, type State } from './states.js';

/** How long an upload or step claim holds without renewal; holders renew it well before. */
export const LEASE_MS = 30_000;

export type KnownVersion = Pick<Job, 'state' | 'size' | 'mtimeMs'>;

/** A daemon's last word, for `status`: which machine, and how long ago (by the store's clock). */
export interface Heartbeat {
  host: string;
  pid: number;
  startedAt: number;
  /** How long since it was last heard. */
  silentMs: number;
}

export interface NewVersion {
  folder: string;
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * What createVersion does with the path's current row, when another process
 * (a daemon sharing the queue) wrote it since the caller looked: `keep` it,
 * this very version still on its way; `follow` it, a file still being
 * written (a `waiting` row follows its size and time, as the intake's own
 * does); or `replace` it with a new version.
 */
export function sightingOf(current: Job, version: Pick<NewVersion, 'size' | 'mtimeMs'>): 'keep' | 'follow' | 'replace' {
  if (current.state === 'waiting') return current.size === version.size && current.mtimeMs === version.mtimeMs ? 'keep' : 'follow';
  return current.size === version.size && current.mtimeMs === version.mtimeMs && !FINAL_STATES.includes(current.state) ? 'keep' : 'replace';
}

/**
 * Rows that reserved their bytes in an attempt that did not finish go
 * first: an attempt cut short (a shutdown, a crash) may have sent every
 * byte, so its row, not a twin, must be the one to send them (again, with
 * its Session-Id); claimed first, it holds its beginning again at once.
 * An SQL ORDER BY, the same in every store.
 */
export const NEXT_UPLOAD_ORDER = '(head_sha256 IS NULL), id';

/** A follow-up made due by a move, in the move's commit. */
export interface NewFollowUp {
  kind: FollowUpKind;
  plan: unknown;
}

/** One transition a row takes in a commit, with the follow-ups it makes due. */
export interface Move {
  to: State;
  patch?: TransitionPatch;
  followUps?: readonly NewFollowUp[];
}

/**
 * Decides, from the row as it is inside the commit, which moves it takes;
 * none (an empty list) leaves it as it is. Runs synchronously within the
 * store's transaction, so it must only look at the row, never wait.
 */
export type Decide = (job: Job) => readonly Move[];

/**
 * The durable job rows, whichever database holds them. Every method is one
 * transaction: a decision that must see the row and write it together
 * (claim, file an outcome, take over an orphan) is a method taking a
 * synchronous predicate or `Decide`, never a transaction held across an
 * await. The state machine is states.ts's table; every implementation
 * writes `state` only through it.
 *
 * "This process" below is the store's holder: each claim names it, and a
 * row claimed by another holder is theirs until its lease lapses.
 */
export interface JobStore {
  /**
   * Calls `onWork` when another process sharing the queue has made work due
   * (a file queued, a retry, a mastering step, a follow-up), so that a
   * daemon starts it at once rather than at its next poll. Returns how to
   * stop listening. A store that only one machine uses has no one to hear
   * from: the scheduler's poll finds what `upload FILE` and `retry` did.
   */
  listenForWork(onWork: () => void): () => void;

  /**
   * Resolves once every commit so far is durable. Call it between a commit
   * and whatever must not happen before that commit is on disk (an API
   * call, moving a file, reporting the state).
   */
  durable(): Promise<void>;

  get(id: number): Promise<Job>;
  /** The live version of a path, if the path was ever seen. */
  current(path: string): Promise<Job | undefined>;
  /** What is known of every live version directly in `directory` (not below it), by path. */
  versionsInDirectory(folder: string, directory: string): Promise<Map<string, KnownVersion>>;
  /**
   * Starts tracking a new version of a path with a fresh Session-Id. The
   * previous version stops being current; one still on its way is `removed`
   * (one `uploaded` is `done`) in the same commit. Idempotent: when this
   * very version is already current and live (another daemon saw the file
   * first), that row is the answer, and nothing is written; a `waiting` row
   * (the file still being written) follows the new size and time instead.
   */
  createVersion(version: NewVersion): Promise<Job>;
  /** A waiting file grew or was touched: same version, new size and mtime. */
  updateWaiting(id: number, size: number, mtimeMs: number): Promise<void>;

  /** Throws `IllegalTransitionError` for moves the table does not allow. */
  transition(id: number, to: State, patch?: TransitionPatch, followUps?: readonly NewFollowUp[]): Promise<Job>;
  /** Moves a row only if it is still in `from`; undefined when it had moved on. */
  transitionIf(id: number, from: State, to: State, patch?: (job: Job) => TransitionPatch): Promise<Job | undefined>;
  /** The moves `decide` makes of the row, in one commit; the row after them, or undefined when it made none. */
  moveIf(id: number, decide: Decide): Promise<Job | undefined>;

  /**
   * Takes a queued job for upload and leases it to this process; with its
   * beginning read, also reserves its bytes (see reserveUpload), in the same
   * commit. Undefined when someone else got there first.
   */
  claimUpload(id: number, headSha256?: string): Promise<{ job: Job; reservation?: UploadReservation } | undefined>;
  /**
   * Takes the oldest queued job for upload and leases it to this process,
   * passing over any that another process is taking at this moment: several
   * daemons sharing one queue each take different jobs without waiting for
   * each other. Undefined when none is left.
   */
  claimNextUpload(): Promise<Job | undefined>;
  /**
   * Whether this row may send its file now, so that of several files with
   * the same bytes, claimed in any order by any process, exactly one sends
   * them. `sha256` is the whole file's, once a `hash` answer asked for it.
   */
  reserveUpload(job: Job, headSha256: string, sha256?: string): Promise<UploadReservation>;
  /** Extends this process's upload claim; false when the row is no longer ours. */
  renewLease(id: number): Promise<boolean>;
  /**
   * Files the outcome of this process's upload attempt, and the moves `then`
   * makes of the filed row, in one commit; undefined when the row is no
   * longer ours to file (replaced, removed or taken over meanwhile).
   */
  fileOutcome(id: number, to: State, patch?: TransitionPatch, then?: Decide): Promise<Job | undefined>;
  /**
   * Uploads whose uploader is gone (killed, crashed, its machine down, its
   * lease lapsed) resume as `retrying`, due now, with their own Session-Id.
   * `isRunningHere` names this process's own running uploads, which need no
   * lease check.
   */
  releaseOrphanedUploads(isRunningHere: (jobId: number) => boolean): Promise<void>;
  /** Claims (or renews) a `mastering` or `downloading` job for this process, unless another holder's claim on it is live. */
  claimStep(id: number): Promise<boolean>;
  /** Schedules the next step of a mastering or downloading job, or stores its mastering plan; not a transition. */
  updateStep(id: number, patch: Pick<TransitionPatch, 'nextAttemptAt' | 'masteringRequested' | 'masteringStatus' | 'masteringPercent' | 'stepFailures' | 'error' | 'masteringPlan'>): Promise<void>;
  /** A note on a row (why its file waits, or was left in place), without changing its state. */
  annotate(id: number, message: string): Promise<void>;
  /** Progress is not a transition: it only feeds `list`. */
  recordProgress(id: number, bytesSent: number): Promise<void>;

  /** The first queued rows, oldest first. */
  queuedIds(limit: number): Promise<number[]>;
  inState(state: State, limit?: number): Promise<Job[]>;
  /** Live versions not settled into a final state, for the startup reconcile. */
  unfinished(): Promise<Job[]>;
  dueRetries(now: number): Promise<Job[]>;
  /** Mastering and download steps that are due and that no other holder is running, oldest first. */
  dueSteps(now: number, limit: number): Promise<Job[]>;
  /** When the next retry, step or follow-up is due; a follow-up someone holds, not before its claim lapses. */
  nextDueAt(now?: number): Promise<number | null>;
  /** Jobs whose masters have waited to be downloaded since before `since`. */
  downloadsWaitingSince(since: number): Promise<number>;

  /** A job's pending follow-ups. */
  followUps(jobId: number): Promise<FollowUp[]>;
  /** Follow-ups that are due and that no other holder is running, oldest first. */
  dueFollowUps(now: number, limit: number): Promise<FollowUp[]>;
  /** Pending follow-ups by kind, and how many have failed at least once. */
  followUpCounts(): Promise<{ kind: FollowUpKind; pending: number; failing: number }[]>;
  /** Follow-ups whose last run failed, with their file, oldest failure first. */
  failingFollowUps(limit: number): Promise<(FollowUp & { path: string })[]>;
  /**
   * Claims (or renews) a pending follow-up for this process, unless another
   * holder's claim on it is live; a first claim (`mustBeDue`) only once it is
   * due. Undefined when it is not ours to run.
   */
  claimFollowUp(jobId: number, kind: FollowUpKind, options: { mustBeDue: boolean }): Promise<FollowUp | undefined>;
  /** This process's run is over: no longer pending. A claim lost meanwhile leaves it to its new holder. */
  finishFollowUp(jobId: number, kind: FollowUpKind): Promise<void>;
  /** This process's run failed or was interrupted: due again at `dueAt`, free for any process. */
  postponeFollowUp(jobId: number, kind: FollowUpKind, patch: { dueAt: number; failures?: number; error?: string }): Promise<void>;

  downloads(jobId: number): Promise<Download[]>;
  recordDownload(jobId: number, download: Download): Promise<void>;
  /** A recorded result that is no longer on disk: it is fetched again. */
  forgetDownload(jobId: number, name: string): Promise<void>;

  counts(): Promise<Record<State, number>>;
  /** Live versions, newest first. */
  list(state?: State): Promise<Job[]>;
  /** Live versions, most recently changed first. */
  recent(limit: number): Promise<Job[]>;
  /** Files that reached `done` since `since` (epoch ms). */
  doneSince(since: number): Promise<number>;
  oldestPending(): Promise<Job | undefined>;

  /** The running daemon is alive: said every few seconds, read by `status`. */
  beat(): Promise<void>;
  /** The daemons heard from lately, each with how long ago. */
  heartbeats(): Promise<Heartbeat[]>;

  setPaused(pause: PauseState | null): Promise<void>;
  paused(): Promise<PauseState | null>;
  /** The running daemon's word on its folders, for `status` in another process. */
  setFolderStates(states: readonly FolderState[]): Promise<void>;
  folderStates(): Promise<FolderState[]>;
  /** The running daemon's caps in force, for `status` in another process; null when it stops. */
  setBandwidth(state: unknown): Promise<void>;
  bandwidth(): Promise<unknown>;
}
