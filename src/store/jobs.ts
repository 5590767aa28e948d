import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Download, FolderState, FollowUp, FollowUpKind, Job, PauseState, TransitionEvent, TransitionPatch, UploadReservation } from './job.js';
import { redactSignedUrls } from '../net/redact.js';
import { FINAL_STATES, STATES, assertTransition, type State } from './states.js';
import { callEach, GroupCommit } from './groupCommit.js';
import { UNRECORDED_HEAD } from './migrations/009-unrecorded-heads.js';

/** A jobs row as stored (snake_case columns); the rest of the program sees `Job`. */
export interface JobRow {
  id: number;
  session_id: string;
  folder: string;
  path: string;
  size: number;
  mtime_ms: number;
  sha256: string | null;
  md5: string | null;
  state: State;
  current: number;
  attempts: number;
  next_attempt_at: number | null;
  error: string | null;
  duplicate_of: number | null;
  bytes_sent: number;
  upload_folder: string | null;
  owner_pid: number | null;
  lease_until: number | null;
  mastering_requested: number;
  mastering_status: string | null;
  mastering_percent: number | null;
  step_failures: number;
  mastering_plan: string | null;
  created_at: number;
  updated_at: number;
}

const fromRow = (row: JobRow): Job => ({
  id: row.id,
  sessionId: row.session_id,
  folder: row.folder,
  path: row.path,
  size: row.size,
  mtimeMs: row.mtime_ms,
  sha256: row.sha256,
  md5: row.md5,
  state: row.state,
  current: row.current === 1,
  attempts: row.attempts,
  nextAttemptAt: row.next_attempt_at,
  error: row.error,
  duplicateOf: row.duplicate_of,
  bytesSent: row.bytes_sent,
  uploadFolder: row.upload_folder,
  ownerPid: row.owner_pid,
  leaseUntil: row.lease_until,
  masteringRequested: row.mastering_requested === 1,
  masteringStatus: row.mastering_status,
  masteringPercent: row.mastering_percent,
  stepFailures: row.step_failures,
  masteringPlan: row.mastering_plan === null ? null : JSON.parse(row.mastering_plan),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const PATCH_COLUMNS: Record<keyof TransitionPatch, string> = {
  error: 'error',
  nextAttemptAt: 'next_attempt_at',
  sha256: 'sha256',
  headSha256: 'head_sha256',
  md5: 'md5',
  attempts: 'attempts',
  duplicateOf: 'duplicate_of',
  bytesSent: 'bytes_sent',
  uploadFolder: 'upload_folder',
  ownerPid: 'owner_pid',
  leaseUntil: 'lease_until',
  masteringRequested: 'mastering_requested',
  masteringStatus: 'mastering_status',
  masteringPercent: 'mastering_percent',
  stepFailures: 'step_failures',
  masteringPlan: 'mastering_plan',
};

interface FollowUpRow {
  job_id: number;
  kind: FollowUpKind;
  plan: string;
  due_at: number;
  failures: number;
  error: string | null;
  owner_pid: number | null;
  lease_until: number | null;
}

const followUpFromRow = (row: FollowUpRow): FollowUp => ({
  jobId: row.job_id,
  kind: row.kind,
  plan: JSON.parse(row.plan),
  dueAt: row.due_at,
  failures: row.failures,
  error: row.error,
  ownerPid: row.owner_pid,
  leaseUntil: row.lease_until,
});

const PAUSE_KEY = 'paused';
const FOLDERS_KEY = 'folders';
const BANDWIDTH_KEY = 'bandwidth';

const AFTER_UPLOAD_STATES: readonly State[] = ['mastering', 'downloading'];

/** States written into a statement as SQL literals (see unfinished() for why literals). */
const sqlList = (states: readonly State[]) => states.map((state) => `'${state}'`).join(', ');

/** States whose bytes storage holds: a file with the same bytes is their duplicate, whether or not mastering has finished. */
const STORED_STATES_SQL = sqlList(['uploaded', ...AFTER_UPLOAD_STATES, 'done']);

/** The row is this process's upload in progress: only then may its attempt file an outcome or hold its bytes. */
const isOwnUpload = (job: Job) => job.state === 'uploading' && job.ownerPid === process.pid;

/** How long an upload claim holds without renewal; uploaders renew it well before. */
export const LEASE_MS = 30_000;

export type KnownVersion = Pick<Job, 'state' | 'size' | 'mtimeMs'>;

export interface NewVersion {
  folder: string;
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * Durable job rows. Every method is one short synchronous statement or
 * transaction: callers never hold a transaction across an await, so a commit
 * has reached the disk before the pipeline makes the API call it enables.
 */
export class JobStore {
  private readonly db: Database.Database;
  private readonly onTransition: ((event: TransitionEvent) => void) | undefined;
  private readonly now: () => number;
  private readonly group: GroupCommit | undefined;

  /**
   * Transitions written by the transaction in progress. They are announced
   * only once the outermost transaction has committed, so a log line or a
   * counter never reports a move that a rollback undid.
   */
  private unannounced: TransitionEvent[] = [];
  /** How many commit() calls are open: SQLite's own inTransaction would read false after a rollback SQLite chose itself. */
  private depth = 0;

  /** better-sqlite3 compiles a statement on every prepare(); a startup scan asks about each of 100k files. */
  private readonly statements = new Map<string, Database.Statement>();

  private sql(source: string): Database.Statement {
    let statement = this.statements.get(source);
    if (statement === undefined) {
      statement = this.db.prepare(source);
      this.statements.set(source, statement);
    }
    return statement;
  }

  /**
   * Runs `work` as a transaction (a savepoint when one is already open) and,
   * once the outermost commit is durable, announces the transitions it
   * wrote. Work that throws takes its transitions with it.
   */
  private commit<T>(work: () => T): T {
    if (this.group?.failure) throw this.group.failure;
    const mark = this.unannounced.length;
    let result: T;
    this.depth++;
    try {
      result = this.db.transaction(work).immediate();
    } catch (error) {
      this.unannounced.splice(mark);
      throw error;
    } finally {
      this.depth--;
    }
    if (this.depth === 0) {
      const events = this.unannounced.splice(0);
      if (this.group) this.group.whenDurable(() => this.announce(events));
      else this.announce(events);
    }
    return result;
  }

  /** Every committed event reaches the listener, even after one throws; the errors surface afterwards (the rows are committed either way). */
  private announce(events: readonly TransitionEvent[]): void {
    const listener = this.onTransition;
    if (listener) callEach(events.map((event) => () => listener(event)));
  }

  /**
   * Resolves once every commit so far is on disk. Call it between a commit
   * and whatever must not happen before that commit is durable (an API call,
   * moving a file, reporting the state): with group commit, commits share
   * their syncs; otherwise each commit was durable when it returned.
   */
  durable(): Promise<void> {
    return this.group?.durable() ?? Promise.resolve();
  }

  /**
   * `onTransition` observes (logs, counters): it must not write to the store.
   * With `groupCommit`, commits share their syncs (see GroupCommit), and the
   * listener hears of a transition only once it is on disk; without it,
   * every commit syncs before it returns.
   */
  constructor(
    db: Database.Database,
    options: { onTransition?: (event: TransitionEvent) => void; now?: () => number; groupCommit?: { windowMs: number; announceWithinMs: number } } = {},
  ) {
    this.db = db;
    this.onTransition = options.onTransition;
    this.now = options.now ?? Date.now;
    if (options.groupCommit !== undefined) {
      db.pragma('synchronous = NORMAL');
      const changes = db.prepare('SELECT total_changes()').pluck();
      this.group = new GroupCommit({ ...options.groupCommit, walFile: `${db.name}-wal`, changes: () => changes.get() as number });
    }
  }

  get(id: number): Job {
    const row = this.sql('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    if (!row) throw new Error(`job ${id} does not exist`);
    return fromRow(row);
  }

  /** The live version of a path, if the path was ever seen. */
  current(path: string): Job | undefined {
    const row = this.sql('SELECT * FROM jobs WHERE path = ? AND current = 1').get(path) as JobRow | undefined;
    return row && fromRow(row);
  }

  /**
   * What is known of every live version directly in `directory` (not below
   * it), by path: one query per directory for a scan that would otherwise ask
   * once per file. A range of the path index, so a scan holds one
   * directory's rows at a time, never the whole folder's.
   */
  versionsInDirectory(folder: string, directory: string): Map<string, KnownVersion> {
    // Every path below `directory` sorts between `directory/` and `directory0` ('0' follows '/'); `+folder` keeps SQLite on that range.
    // Rows as arrays: a third faster than as objects with named keys. This statement is used nowhere else.
    const prefix = directory.endsWith('/') ? directory : `${directory}/`;
    const rows = this.sql(
        `SELECT path, state, size, mtime_ms FROM jobs
         WHERE current = 1 AND path > ? AND path < ? AND +folder = ? AND instr(substr(path, length(?) + 1), '/') = 0`,
      )
      .raw(true)
      .all(prefix, `${prefix.slice(0, -1)}0`, folder, prefix) as [string, State, number, number][];
    return new Map(rows.map(([path, state, size, mtimeMs]) => [path, { state, size, mtimeMs }]));
  }

  /**
   * Starts tracking a new version of a path with a fresh Session-Id. The
   * previous version stops being current; if it was still in flight it is
   * `removed` in the same transaction, so no two versions of one path are
   * ever both live.
   */
  createVersion(version: NewVersion): Job {
    const now = this.now();
    return this.commit(() => {
      const previous = this.current(version.path);
      // Its bytes are stored; only the after-upload step is skipped for a file that has changed since.
      if (previous?.state === 'uploaded') this.transition(previous.id, 'done');
      // Mastering and downloading carry on: the masters of the uploaded version are still wanted.
      else if (previous && !FINAL_STATES.includes(previous.state) && !AFTER_UPLOAD_STATES.includes(previous.state)) {
        this.transition(previous.id, 'removed', { error: 'replaced by a newer version of the file' });
      }
      if (previous) this.sql('UPDATE jobs SET current = 0 WHERE id = ?').run(previous.id);
      const { lastInsertRowid } = this.sql(
          `INSERT INTO jobs (session_id, folder, path, size, mtime_ms, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?)`,
        )
        .run(randomUUID(), version.folder, version.path, version.size, version.mtimeMs, now, now);
      const job = this.get(Number(lastInsertRowid));
      this.unannounced.push({ job, from: null, durationMs: 0 });
      return job;
    });
  }

  /** A waiting file grew or was touched: same version, new size and mtime. */
  updateWaiting(id: number, size: number, mtimeMs: number): void {
    this.sql(`UPDATE jobs SET size = ?, mtime_ms = ? WHERE id = ? AND state = 'waiting'`).run(size, mtimeMs, id);
  }

  /** Runs `work` as one transaction: its changes reach the disk together, with one sync instead of one each. */
  atomically<T>(work: () => T): T {
    return this.commit(work);
  }

  /** The only writer of `state`. Throws `IllegalTransitionError` for moves the table does not allow. */
  transition(id: number, to: State, patch: TransitionPatch = {}): Job {
    return this.commit(() => {
      const before = this.get(id);
      assertTransition(id, before.state, to);
      this.update(id, { state: to, updated_at: this.now() }, patch);
      const after = this.get(id);
      this.unannounced.push({ job: after, from: before.state, durationMs: after.updatedAt - before.updatedAt });
      return after;
    });
  }

  /**
   * Moves a row only if it is still in `from`, atomically. Other processes
   * (`upload FILE`, `retry`) share the DB, so "check, then move" must be one
   * transaction. Undefined when the row had already moved on.
   */
  transitionIf(id: number, from: State, to: State, patch: (job: Job) => TransitionPatch = () => ({})): Job | undefined {
    return this.moveIf(id, (job) => job.state === from, to, patch);
  }

  /** Takes a queued job for upload and leases it to this process; undefined when someone else got there first. */
  claim(id: number): Job | undefined {
    return this.transitionIf(id, 'queued', 'uploading', (job) => ({
      attempts: job.attempts + 1,
      // Held again only by reserveUpload: a beginning kept from an earlier attempt would make a twin wait for a row that has not decided.
      headSha256: null,
      error: null,
      nextAttemptAt: null,
      bytesSent: 0,
      ownerPid: process.pid,
      leaseUntil: this.now() + LEASE_MS,
    }));
  }

  /** Extends this process's claim; false when the row is no longer ours (taken over after a long pause, replaced, removed). */
  renewLease(id: number): boolean {
    const renewed = this.sql(`UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'uploading' AND owner_pid = ?`)
      .run(this.now() + LEASE_MS, id, process.pid);
    return renewed.changes > 0;
  }

  /**
   * Claims a `mastering` or `downloading` job for this process, or renews the
   * claim, when `mayTake` judges it free; decided and written in one
   * transaction.
   */
  claimStep(id: number, mayTake: (job: Job) => boolean): boolean {
    return this.commit(() => {
      const job = this.get(id);
      if ((job.state !== 'mastering' && job.state !== 'downloading') || !mayTake(job)) return false;
      this.sql('UPDATE jobs SET owner_pid = ?, lease_until = ? WHERE id = ?').run(process.pid, this.now() + LEASE_MS, id);
      return true;
    });
  }

  /**
   * Files the outcome of this process's upload attempt, only while the row is
   * still ours to file; undefined when it was replaced, removed or taken over
   * meanwhile, and the attempt's result no longer describes it.
   */
  fileOutcome(id: number, to: State, patch: TransitionPatch = {}): Job | undefined {
    return this.moveIf(id, isOwnUpload, to, () => patch);
  }

  /** Moves an `uploading` row whose claim `isOrphaned` judges abandoned; decided and done in one transaction. */
  releaseOrphan(id: number, isOrphaned: (job: Job) => boolean, patch: TransitionPatch): Job | undefined {
    return this.moveIf(id, (job) => job.state === 'uploading' && isOrphaned(job), 'retrying', () => patch);
  }

  private moveIf(id: number, accept: (job: Job) => boolean, to: State, patch: (job: Job) => TransitionPatch): Job | undefined {
    return this.commit(() => {
      const job = this.get(id);
      return accept(job) ? this.transition(id, to, patch(job)) : undefined;
    });
  }

  /** A note on a row (e.g. why its file waits, or was left in place), without changing its state. */
  annotate(id: number, message: string): void {
    this.sql('UPDATE jobs SET error = ? WHERE id = ?').run(message, id);
  }

  /** Progress is not a transition: it only feeds `list`. */
  recordProgress(id: number, bytesSent: number): void {
    this.sql('UPDATE jobs SET bytes_sent = ? WHERE id = ?').run(bytesSent, id);
  }

  /** The first queued rows, oldest first: all the scheduler needs of them is which. */
  queuedIds(limit: number): number[] {
    return this.sql(`SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?`).pluck().all(limit) as number[];
  }

  inState(state: State, limit = -1): Job[] {
    const rows = this.sql('SELECT * FROM jobs WHERE state = ? ORDER BY id LIMIT ?').all(state, limit) as JobRow[];
    return rows.map(fromRow);
  }

  /** Live versions that are not settled into a final state, for the startup reconcile. */
  unfinished(): Job[] {
    // Literal states, not parameters: only then can SQLite tell that the jobs_unfinished index (migration 006) holds every answer.
    const finalStates = sqlList(FINAL_STATES);
    const rows = this.sql(`SELECT * FROM jobs WHERE current = 1 AND state NOT IN (${finalStates}) ORDER BY id`).all() as JobRow[];
    return rows.map(fromRow);
  }

  dueRetries(now: number): Job[] {
    const rows = this.sql(`SELECT * FROM jobs WHERE state = 'retrying' AND next_attempt_at <= ? ORDER BY next_attempt_at`)
      .all(now) as JobRow[];
    return rows.map(fromRow);
  }

  /** When the next retry, mastering poll, download or follow-up is due; a follow-up someone is running, not before its claim lapses. */
  nextDueAt(now = this.now()): number | null {
    const row = this.sql(
        `SELECT MIN(at) AS at FROM (SELECT MIN(next_attempt_at) AS at FROM jobs WHERE state IN ('retrying', 'mastering', 'downloading')
                                    UNION ALL SELECT MIN(CASE WHEN lease_until > ? THEN lease_until ELSE due_at END) FROM follow_ups)`,
      )
      .get(now) as { at: number | null };
    return row.at;
  }

  /** Mastering and download steps that are due, oldest first. */
  dueSteps(now: number, limit: number): Job[] {
    const rows = this.sql(`SELECT * FROM jobs WHERE state IN ('mastering', 'downloading') AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`)
      .all(now, limit) as JobRow[];
    return rows.map(fromRow);
  }

  /** Schedules the next step of a mastering or downloading job, or stores what a job is to be mastered with; not a transition. */
  updateStep(id: number, patch: Pick<TransitionPatch, 'nextAttemptAt' | 'masteringRequested' | 'masteringStatus' | 'masteringPercent' | 'stepFailures' | 'error' | 'masteringPlan'>): void {
    this.update(id, {}, patch);
  }

  /** Writes `columns` as given and `patch` through PATCH_COLUMNS, in one statement. */
  private update(id: number, columns: Record<string, unknown>, patch: TransitionPatch): void {
    const values: Record<string, unknown> = { ...columns };
    for (const [key, value] of Object.entries(patch) as [keyof TransitionPatch, unknown][]) {
      if (value === undefined) continue;
      // Errors quote storage's and the API's words; a signed URL among them must not be kept.
      values[PATCH_COLUMNS[key]] =
        key === 'error' && typeof value === 'string' ? redactSignedUrls(value) : key === 'masteringPlan' ? JSON.stringify(value) : typeof value === 'boolean' ? Number(value) : value;
    }
    const columnsToSet = Object.keys(values);
    if (columnsToSet.length === 0) return;
    this.sql(`UPDATE jobs SET ${columnsToSet.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id`).run({ ...values, id });
  }

  /** Jobs whose masters have waited to be downloaded since before `since` (they entered `downloading` then). */
  downloadsWaitingSince(since: number): number {
    const row = this.sql(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'downloading' AND updated_at < ?`).get(since) as { n: number };
    return row.n;
  }

  /**
   * Makes a follow-up due (replacing one of the same kind): called in the
   * same transaction as the transition that makes it due.
   */
  addFollowUp(jobId: number, kind: FollowUpKind, plan: unknown, dueAt = this.now()): void {
    this.sql(
        `INSERT INTO follow_ups (job_id, kind, plan, due_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (job_id, kind) DO UPDATE SET plan = excluded.plan, due_at = excluded.due_at, failures = 0, error = NULL, owner_pid = NULL, lease_until = NULL`,
      )
      .run(jobId, kind, JSON.stringify(plan), dueAt);
  }

  /** A job's pending follow-ups. */
  followUps(jobId: number): FollowUp[] {
    return (this.sql('SELECT * FROM follow_ups WHERE job_id = ? ORDER BY kind').all(jobId) as FollowUpRow[]).map(followUpFromRow);
  }

  /** Follow-ups that are due, oldest first. */
  dueFollowUps(now: number, limit: number): FollowUp[] {
    return (this.sql('SELECT * FROM follow_ups WHERE due_at <= ? ORDER BY due_at LIMIT ?').all(now, limit) as FollowUpRow[]).map(followUpFromRow);
  }

  /** Pending follow-ups by kind, and how many of them have failed at least once. */
  followUpCounts(): { kind: FollowUpKind; pending: number; failing: number }[] {
    return this.sql('SELECT kind, COUNT(*) AS pending, SUM(failures > 0) AS failing FROM follow_ups GROUP BY kind').all() as {
      kind: FollowUpKind;
      pending: number;
      failing: number;
    }[];
  }

  /** Follow-ups whose last run failed, with their file, oldest failure first. */
  failingFollowUps(limit: number): (FollowUp & { path: string })[] {
    const rows = this.sql('SELECT f.*, j.path FROM follow_ups f JOIN jobs j ON j.id = f.job_id WHERE f.failures > 0 ORDER BY f.job_id LIMIT ?').all(limit) as (FollowUpRow & { path: string })[];
    return rows.map((row) => ({ ...followUpFromRow(row), path: row.path }));
  }

  /**
   * Claims a follow-up for this process, or renews the claim, when it is
   * still pending and `mayTake` judges it free; decided and written in one
   * transaction. Undefined when it is not ours to run.
   */
  claimFollowUp(jobId: number, kind: FollowUpKind, mayTake: (followUp: FollowUp) => boolean): FollowUp | undefined {
    return this.commit(() => {
      const row = this.sql('SELECT * FROM follow_ups WHERE job_id = ? AND kind = ?').get(jobId, kind) as FollowUpRow | undefined;
      if (!row || !mayTake(followUpFromRow(row))) return undefined;
      const leaseUntil = this.now() + LEASE_MS;
      this.sql('UPDATE follow_ups SET owner_pid = ?, lease_until = ? WHERE job_id = ? AND kind = ?').run(process.pid, leaseUntil, jobId, kind);
      return followUpFromRow({ ...row, owner_pid: process.pid, lease_until: leaseUntil });
    });
  }

  /** This process's run of the follow-up is over: it is no longer pending. A claim lost meanwhile leaves it to its new holder. */
  finishFollowUp(jobId: number, kind: FollowUpKind): void {
    this.sql('DELETE FROM follow_ups WHERE job_id = ? AND kind = ? AND owner_pid = ?').run(jobId, kind, process.pid);
  }

  /** This process's run failed or was interrupted: due again at `dueAt`, free for any process. */
  postponeFollowUp(jobId: number, kind: FollowUpKind, patch: { dueAt: number; failures?: number; error?: string }): void {
    this.sql(
        `UPDATE follow_ups SET due_at = ?, failures = coalesce(?, failures), error = coalesce(?, error), owner_pid = NULL, lease_until = NULL
         WHERE job_id = ? AND kind = ? AND owner_pid = ?`,
      )
      .run(patch.dueAt, patch.failures ?? null, patch.error === undefined ? null : redactSignedUrls(patch.error), jobId, kind, process.pid);
  }

  downloads(jobId: number): Download[] {
    return this.sql('SELECT name, path, bytes, sha256 FROM downloads WHERE job_id = ? ORDER BY name').all(jobId) as Download[];
  }

  /** A recorded result that is no longer on disk: it is fetched again. */
  forgetDownload(jobId: number, name: string): void {
    this.sql('DELETE FROM downloads WHERE job_id = ? AND name = ?').run(jobId, name);
  }

  recordDownload(jobId: number, download: Download): void {
    this.sql('INSERT INTO downloads (job_id, name, path, bytes, sha256) VALUES (?, ?, ?, ?, ?)')
      .run(jobId, download.name, download.path, download.bytes, download.sha256);
  }

  /**
   * Whether this row may send its file now, decided in one transaction, so
   * that of several files with the same bytes, claimed in any order, by any
   * process, exactly one sends them. A row that sends holds its beginning
   * (`head_sha256`) while `uploading`; another file of the folder with the
   * same size and beginning waits for it, then finds its stored upload.
   * `sha256` is the whole file's, once `hash` asked for it.
   */
  reserveUpload(job: Job, headSha256: string, sha256?: string): UploadReservation {
    return this.commit(() => {
      if (!isOwnUpload(this.get(job.id))) return { kind: 'lost' };
      if (sha256 !== undefined) {
        const original = this.findUploaded(job.folder, sha256, job.id);
        if (original) return { kind: 'duplicate', original };
      } else if (this.hasUploadOfHead(job.folder, job.size, headSha256, job.id)) {
        return { kind: 'hash' };
      }
      // `+state`: the folder, size and head index holds the few candidates; the state index would walk every uploading row.
      const holder = this.sql(`SELECT * FROM jobs WHERE folder = ? AND size = ? AND head_sha256 = ? AND id != ? AND +state = 'uploading' LIMIT 1`)
        .get(job.folder, job.size, headSha256, job.id) as JobRow | undefined;
      if (holder) return { kind: 'wait', holder: fromRow(holder) };
      this.sql('UPDATE jobs SET head_sha256 = ? WHERE id = ?').run(headSha256, job.id);
      return { kind: 'send' };
    });
  }

  /** A stored upload from this folder of this size that began the same way, or whose beginning was not recorded (uploaded before migration 007). */
  private hasUploadOfHead(folder: string, size: number, headSha256: string, excludeId: number): boolean {
    return (
      // `+`: use the folder, size and head index, a handful of rows, not the state or sha256 index, which walk every finished row.
      this.sql(`SELECT 1 FROM jobs WHERE folder = ? AND size = ? AND head_sha256 IN (?, ?) AND id != ? AND +state IN (${STORED_STATES_SQL}) AND +sha256 IS NOT NULL LIMIT 1`)
        .get(folder, size, headSha256, UNRECORDED_HEAD, excludeId) !== undefined
    );
  }

  /** The earliest stored upload from this folder with these bytes; a dedupe row points at the original, not at another duplicate. */
  private findUploaded(folder: string, sha256: string, excludeId: number): Job | undefined {
    const row = this.sql(
        `SELECT * FROM jobs WHERE folder = ? AND sha256 = ? AND id != ? AND +state IN (${STORED_STATES_SQL}) AND duplicate_of IS NULL ORDER BY id LIMIT 1`,
      )
      .get(folder, sha256, excludeId) as JobRow | undefined;
    return row && fromRow(row);
  }

  counts(): Record<State, number> {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<State, number>;
    const rows = this.sql('SELECT state, COUNT(*) AS n FROM jobs WHERE current = 1 GROUP BY state').all() as { state: State; n: number }[];
    for (const { state, n } of rows) counts[state] = n;
    return counts;
  }

  /** Live versions, newest first. */
  list(state?: State): Job[] {
    const rows = (
      state
        ? this.sql('SELECT * FROM jobs WHERE current = 1 AND state = ? ORDER BY id DESC').all(state)
        : this.sql('SELECT * FROM jobs WHERE current = 1 ORDER BY id DESC').all()
    ) as JobRow[];
    return rows.map(fromRow);
  }

  /** Live versions, most recently changed first. */
  recent(limit: number): Job[] {
    const rows = this.sql('SELECT * FROM jobs WHERE current = 1 ORDER BY updated_at DESC LIMIT ?').all(limit) as JobRow[];
    return rows.map(fromRow);
  }

  /** Files that reached `done` since `since` (epoch ms). */
  doneSince(since: number): number {
    // `+state` keeps SQLite off the state index, which would walk every done row ever; today's are a short range of jobs_recent.
    const row = this.sql(`SELECT COUNT(*) AS n FROM jobs WHERE current = 1 AND updated_at >= ? AND +state = 'done'`).get(since) as { n: number };
    return row.n;
  }

  oldestPending(): Job | undefined {
    const row = this.sql(`SELECT * FROM jobs WHERE current = 1 AND state IN ('waiting', 'queued', 'uploading', 'retrying') ORDER BY created_at LIMIT 1`)
      .get() as JobRow | undefined;
    return row && fromRow(row);
  }

  setPaused(pause: PauseState | null): void {
    this.setDaemonValue(PAUSE_KEY, pause);
  }

  paused(): PauseState | null {
    return this.daemonValue<PauseState>(PAUSE_KEY) ?? null;
  }

  /** The running daemon's word on its folders, for `status` in another process: written whenever a folder's problem changes. */
  setFolderStates(states: readonly FolderState[]): void {
    this.setDaemonValue(FOLDERS_KEY, states);
  }

  /** As the daemon last wrote them; empty when no daemon ever did. */
  folderStates(): FolderState[] {
    return this.daemonValue<FolderState[]>(FOLDERS_KEY) ?? [];
  }

  /** The running daemon's caps in force (BandwidthState), for `status` in another process; null when it stops. */
  setBandwidth(state: unknown): void {
    this.setDaemonValue(BANDWIDTH_KEY, state);
  }

  bandwidth(): unknown {
    return this.daemonValue<unknown>(BANDWIDTH_KEY) ?? null;
  }

  /** null removes the key: nothing to say. */
  private setDaemonValue(key: string, value: unknown): void {
    if (value === null) {
      this.sql('DELETE FROM daemon WHERE key = ?').run(key);
      return;
    }
    this.sql('INSERT INTO daemon (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  private daemonValue<T>(key: string): T | undefined {
    const row = this.sql('SELECT value FROM daemon WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }
}
