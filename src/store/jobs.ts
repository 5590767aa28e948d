import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import { patchColumns } from './patch.js';
import type { Download, FolderState, FollowUp, FollowUpKind, Job, PauseState, TransitionEvent, TransitionPatch, UploadReservation } from './job.js';
import { LEASE_MS, sightingOf, NEXT_UPLOAD_ORDER, type Decide, type Heartbeat, type JobStore, type KnownVersion, type Move, type NewFollowUp, type NewVersion } from './store.js';
import { errnoCode } from '../files/errno.js';
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
  ownerHost: null,
  leaseUntil: row.lease_until,
  masteringRequested: row.mastering_requested === 1,
  masteringStatus: row.mastering_status,
  masteringPercent: row.mastering_percent,
  stepFailures: row.step_failures,
  masteringPlan: row.mastering_plan === null ? null : JSON.parse(row.mastering_plan),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

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
const HEARTBEAT_KEY = 'heartbeat';
const DAY_MS = 24 * 3600 * 1000;

type StoredHeartbeat = Omit<Heartbeat, 'silentMs'> & { lastSeenAt: number };

const AFTER_UPLOAD_STATES: readonly State[] = ['mastering', 'downloading'];

/** States written into a statement as SQL literals (see unfinished() for why literals). */
const sqlList = (states: readonly State[]) => states.map((state) => `'${state}'`).join(', ');

/** States whose bytes storage holds: a file with the same bytes is their duplicate, whether or not mastering has finished. */
const STORED_STATES_SQL = sqlList(['uploaded', ...AFTER_UPLOAD_STATES, 'done']);

/** Signal 0 only asks whether the process exists; EPERM means it does, under another user. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}


/**
 * The job rows in SQLite, through better-sqlite3: one machine's store. Each
 * method's work is one short synchronous statement or transaction, so a
 * commit is whole before the method's promise settles, and no transaction
 * is ever held across an await.
 */
export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;
  private readonly onTransition: ((event: TransitionEvent) => void) | undefined;
  private readonly now: () => number;
  private readonly group: GroupCommit | undefined;
  private readonly pid: number;
  private readonly leaseMs: number;

  /**
   * Transitions written by the transaction in progress. They are announced
   * only once the outermost transaction has committed, so a log line or a
   * counter never reports a move that a rollback undid.
   */
  private unannounced: TransitionEvent[] = [];

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
   * Runs `work` as one transaction and, once it is durable, announces the
   * transitions it wrote. Work that throws takes its transitions with it.
   * Every write goes through here, one statement or many: after a failed
   * sync nothing more may be written.
   */
  private commit<T>(work: () => T): T {
    if (this.group?.failure) throw this.group.failure;
    let result: T;
    try {
      result = this.db.transaction(work).immediate();
    } catch (error) {
      this.unannounced = [];
      throw error;
    }
    const events = this.unannounced;
    this.unannounced = [];
    if (this.group) this.group.whenDurable(() => this.announce(events));
    else this.announce(events);
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
    options: {
      onTransition?: (event: TransitionEvent) => void;
      now?: () => number;
      groupCommit?: { windowMs: number; announceWithinMs: number };
      /** The holder this store claims rows for: this process, unless a test stands in for another. */
      pid?: number;
      leaseMs?: number;
    } = {},
  ) {
    this.db = db;
    this.onTransition = options.onTransition;
    this.now = options.now ?? Date.now;
    this.pid = options.pid ?? process.pid;
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    if (options.groupCommit !== undefined) {
      db.pragma('synchronous = NORMAL');
      const changes = db.prepare('SELECT total_changes()').pluck();
      this.group = new GroupCommit({ ...options.groupCommit, walFile: `${db.name}-wal`, changes: () => changes.get() as number });
    }
  }

  /** SQLite tells other processes nothing: one machine's `upload FILE` and `retry` are found by the scheduler's poll. */
  listenForWork(): () => void {
    return () => {};
  }

  async get(id: number): Promise<Job> {
    return this.row(id);
  }

  private row(id: number): Job {
    const row = this.sql('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    if (!row) throw new Error(`job ${id} does not exist`);
    return fromRow(row);
  }

  async current(path: string): Promise<Job | undefined> {
    return this.currentRow(path);
  }

  private currentRow(path: string): Job | undefined {
    const row = this.sql('SELECT * FROM jobs WHERE path = ? AND current = 1').get(path) as JobRow | undefined;
    return row && fromRow(row);
  }

  /**
   * One query per directory for a scan that would otherwise ask once per
   * file. A range of the path index, so a scan holds one directory's rows at
   * a time, never the whole folder's.
   */
  async versionsInDirectory(folder: string, directory: string): Promise<Map<string, KnownVersion>> {
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

  /** No two versions of one path are ever both live. */
  async createVersion(version: NewVersion): Promise<Job> {
    const now = this.now();
    return this.commit(() => {
      const previous = this.currentRow(version.path);
      const sighting = previous && sightingOf(previous, version);
      if (sighting === 'keep') return previous!;
      if (sighting === 'follow') {
        this.sql(`UPDATE jobs SET size = ?, mtime_ms = ? WHERE id = ?`).run(version.size, version.mtimeMs, previous!.id);
        return this.row(previous!.id);
      }
      // Its bytes are stored; only the after-upload step is skipped for a file that has changed since.
      if (previous?.state === 'uploaded') this.move(previous.id, { to: 'done' });
      // Mastering and downloading carry on: the masters of the uploaded version are still wanted.
      else if (previous && !FINAL_STATES.includes(previous.state) && !AFTER_UPLOAD_STATES.includes(previous.state)) {
        this.move(previous.id, { to: 'removed', patch: { error: 'replaced by a newer version of the file' } });
      }
      if (previous) this.sql('UPDATE jobs SET current = 0 WHERE id = ?').run(previous.id);
      const { lastInsertRowid } = this.sql(
          `INSERT INTO jobs (session_id, folder, path, size, mtime_ms, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?)`,
        )
        .run(randomUUID(), version.folder, version.path, version.size, version.mtimeMs, now, now);
      const job = this.row(Number(lastInsertRowid));
      this.unannounced.push({ job, from: null, durationMs: 0 });
      return job;
    });
  }

  async updateWaiting(id: number, size: number, mtimeMs: number): Promise<void> {
    this.commit(() => this.sql(`UPDATE jobs SET size = ?, mtime_ms = ? WHERE id = ? AND state = 'waiting'`).run(size, mtimeMs, id));
  }

  async transition(id: number, to: State, patch: TransitionPatch = {}, followUps: readonly NewFollowUp[] = []): Promise<Job> {
    return this.commit(() => this.move(id, { to, patch, followUps }));
  }

  async transitionIf(id: number, from: State, to: State, patch: (job: Job) => TransitionPatch = () => ({})): Promise<Job | undefined> {
    return this.commit(() => this.moveWhen(id, (job) => (job.state === from ? [{ to, patch: patch(job) }] : [])));
  }

  async moveIf(id: number, decide: Decide): Promise<Job | undefined> {
    return this.commit(() => this.moveWhen(id, decide));
  }

  /** The only writer of `state`: each move is checked against the table, and its follow-ups are due in the same commit. */
  private move(id: number, { to, patch = {}, followUps = [] }: Move): Job {
    const before = this.row(id);
    assertTransition(id, before.state, to);
    this.update(id, { state: to, updated_at: this.now() }, patch);
    for (const followUp of followUps) this.addFollowUp(id, followUp);
    const after = this.row(id);
    this.unannounced.push({ job: after, from: before.state, durationMs: after.updatedAt - before.updatedAt });
    return after;
  }

  /** Within a commit: the moves `decide` makes of the row as it is now, one after the other. */
  private moveWhen(id: number, decide: Decide): Job | undefined {
    const moves = decide(this.row(id));
    let job: Job | undefined;
    for (const next of moves) job = this.move(id, next);
    return job;
  }

  async claimUpload(id: number, headSha256?: string): Promise<{ job: Job; reservation?: UploadReservation } | undefined> {
    return this.commit(() => {
      const job = this.claimQueued(id);
      if (!job) return undefined;
      return headSha256 === undefined ? { job } : { job, reservation: this.reserve(job, headSha256) };
    });
  }

  /** One process writes at a time (BEGIN IMMEDIATE), so the row found is free to take. */
  async claimNextUpload(): Promise<Job | undefined> {
    return this.commit(() => {
      const id = this.sql(`SELECT id FROM jobs WHERE state = 'queued' ORDER BY ${NEXT_UPLOAD_ORDER} LIMIT 1`).pluck().get() as number | undefined;
      return id === undefined ? undefined : this.claimQueued(id);
    });
  }

  private claimQueued(id: number): Job | undefined {
    // A beginning it holds is kept (see NEXT_UPLOAD_ORDER): uploading again, it holds it for its twins at once.
    const claimed = this.moveWhen(id, (queued) =>
      queued.state === 'queued' ? [{ to: 'uploading', patch: { attempts: queued.attempts + 1, error: null, nextAttemptAt: null, bytesSent: 0 } }] : [],
    );
    if (!claimed) return undefined;
    this.sql('UPDATE jobs SET owner_pid = ?, lease_until = ? WHERE id = ?').run(this.pid, this.now() + this.leaseMs, id);
    return this.row(id);
  }



  async renewLease(id: number): Promise<boolean> {
    const renewed = this.commit(() =>
      this.sql(`UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'uploading' AND owner_pid = ?`).run(this.now() + this.leaseMs, id, this.pid),
    );
    return renewed.changes > 0;
  }

  async claimStep(id: number): Promise<boolean> {
    return this.commit(() => {
      const job = this.row(id);
      if ((job.state !== 'mastering' && job.state !== 'downloading') || !this.free(job)) return false;
      this.sql('UPDATE jobs SET owner_pid = ?, lease_until = ? WHERE id = ?').run(this.pid, this.now() + this.leaseMs, id);
      return true;
    });
  }

  async fileOutcome(id: number, to: State, patch: TransitionPatch = {}, then: Decide = () => []): Promise<Job | undefined> {
    return this.commit(() => {
      const filed = this.moveWhen(id, (job) => (this.isOwnUpload(job) ? [{ to, patch }] : []));
      return filed && (this.moveWhen(id, then) ?? filed);
    });
  }

  async releaseOrphanedUploads(isRunningHere: (jobId: number) => boolean): Promise<void> {
    const now = this.now();
    const orphaned = (job: Job) => job.state === 'uploading' && !isRunningHere(job.id) && this.free(job);
    const resume: Move[] = [{ to: 'retrying', patch: { nextAttemptAt: now, error: 'interrupted while uploading (its uploader stopped); resuming' } }];
    // Judged again within each row's commit: another process may have filed it meanwhile.
    for (const job of (await this.inState('uploading')).filter(orphaned)) this.commit(() => this.moveWhen(job.id, (row) => (orphaned(row) ? resume : [])));
  }

  /** The row is this process's upload in progress: only then may its attempt file an outcome or hold its bytes. */
  private isOwnUpload(job: Job): boolean {
    return job.state === 'uploading' && job.ownerPid === this.pid;
  }

  /**
   * No other live process holds a fresh claim on the row (the daemon and
   * `upload FILE` share the DB). On one machine a claim whose process is
   * gone is free at once, without waiting for its lease to lapse.
   */
  private free(claim: Pick<Job, 'ownerPid' | 'leaseUntil'>): boolean {
    const heldElsewhere = claim.ownerPid !== null && claim.ownerPid !== this.pid && (claim.leaseUntil ?? 0) > this.now() && processAlive(claim.ownerPid);
    return !heldElsewhere;
  }

  async annotate(id: number, message: string): Promise<void> {
    this.commit(() => this.sql('UPDATE jobs SET error = ? WHERE id = ?').run(redactSignedUrls(message), id));
  }

  async recordProgress(id: number, bytesSent: number): Promise<void> {
    this.commit(() => this.sql('UPDATE jobs SET bytes_sent = ? WHERE id = ?').run(bytesSent, id));
  }

  async queuedIds(limit: number): Promise<number[]> {
    return this.sql(`SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?`).pluck().all(limit) as number[];
  }

  async inState(state: State, limit = -1): Promise<Job[]> {
    const rows = this.sql('SELECT * FROM jobs WHERE state = ? ORDER BY id LIMIT ?').all(state, limit) as JobRow[];
    return rows.map(fromRow);
  }

  async unfinished(): Promise<Job[]> {
    // Literal states, not parameters: only then can SQLite tell that the jobs_unfinished index (migration 006) holds every answer.
    const finalStates = sqlList(FINAL_STATES);
    const rows = this.sql(`SELECT * FROM jobs WHERE current = 1 AND state NOT IN (${finalStates}) ORDER BY id`).all() as JobRow[];
    return rows.map(fromRow);
  }

  async dueRetries(now: number): Promise<Job[]> {
    const rows = this.sql(`SELECT * FROM jobs WHERE state = 'retrying' AND next_attempt_at <= ? ORDER BY next_attempt_at`)
      .all(now) as JobRow[];
    return rows.map(fromRow);
  }

  async nextDueAt(now = this.now()): Promise<number | null> {
    const row = this.sql(
        `SELECT MIN(at) AS at FROM (SELECT MIN(next_attempt_at) AS at FROM jobs WHERE state IN ('retrying', 'mastering', 'downloading')
                                    UNION ALL SELECT MIN(CASE WHEN lease_until > ? THEN lease_until ELSE due_at END) FROM follow_ups)`,
      )
      .get(now) as { at: number | null };
    return row.at;
  }

  async dueSteps(now: number, limit: number): Promise<Job[]> {
    const rows = this.sql(`SELECT * FROM jobs WHERE state IN ('mastering', 'downloading') AND next_attempt_at <= ? ORDER BY next_attempt_at`).iterate(now);
    return this.firstFree(rows as IterableIterator<JobRow>, fromRow, limit);
  }

  /** The first `limit` rows no other live process holds: rows held elsewhere do not use up the limit. */
  private firstFree<R, T extends Pick<Job, 'ownerPid' | 'leaseUntil'>>(rows: IterableIterator<R>, toItem: (row: R) => T, limit: number): T[] {
    const free: T[] = [];
    for (const row of rows) {
      if (free.length >= limit) break;
      const item = toItem(row);
      if (this.free(item)) free.push(item);
    }
    return free;
  }

  async updateStep(id: number, patch: Pick<TransitionPatch, 'nextAttemptAt' | 'masteringRequested' | 'masteringStatus' | 'masteringPercent' | 'stepFailures' | 'error' | 'masteringPlan'>): Promise<void> {
    this.commit(() => this.update(id, {}, patch));
  }

  /** Writes `columns` as given and `patch`, in one statement. */
  private update(id: number, columns: Record<string, unknown>, patch: TransitionPatch): void {
    const values: Record<string, unknown> = { ...columns };
    // SQLite has no booleans: 0 and 1.
    for (const [column, value] of patchColumns(patch)) values[column] = typeof value === 'boolean' ? Number(value) : value;
    const columnsToSet = Object.keys(values);
    if (columnsToSet.length === 0) return;
    this.sql(`UPDATE jobs SET ${columnsToSet.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id`).run({ ...values, id });
  }

  async downloadsWaitingSince(since: number): Promise<number> {
    const row = this.sql(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'downloading' AND updated_at < ?`).get(since) as { n: number };
    return row.n;
  }

  /** Makes a follow-up due now, replacing one of the same kind; only ever within the commit of the move that makes it due. */
  private addFollowUp(jobId: number, { kind, plan }: NewFollowUp): void {
    this.sql(
        `INSERT INTO follow_ups (job_id, kind, plan, due_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (job_id, kind) DO UPDATE SET plan = excluded.plan, due_at = excluded.due_at, failures = 0, error = NULL, owner_pid = NULL, lease_until = NULL`,
      )
      .run(jobId, kind, JSON.stringify(plan), this.now());
  }

  async followUps(jobId: number): Promise<FollowUp[]> {
    return (this.sql('SELECT * FROM follow_ups WHERE job_id = ? ORDER BY kind').all(jobId) as FollowUpRow[]).map(followUpFromRow);
  }

  async dueFollowUps(now: number, limit: number): Promise<FollowUp[]> {
    const rows = this.sql('SELECT * FROM follow_ups WHERE due_at <= ? ORDER BY due_at').iterate(now);
    return this.firstFree(rows as IterableIterator<FollowUpRow>, followUpFromRow, limit);
  }

  async followUpCounts(): Promise<{ kind: FollowUpKind; pending: number; failing: number }[]> {
    return this.sql('SELECT kind, COUNT(*) AS pending, SUM(failures > 0) AS failing FROM follow_ups GROUP BY kind').all() as {
      kind: FollowUpKind;
      pending: number;
      failing: number;
    }[];
  }

  async failingFollowUps(limit: number): Promise<(FollowUp & { path: string })[]> {
    const rows = this.sql('SELECT f.*, j.path FROM follow_ups f JOIN jobs j ON j.id = f.job_id WHERE f.failures > 0 ORDER BY f.job_id LIMIT ?').all(limit) as (FollowUpRow & { path: string })[];
    return rows.map((row) => ({ ...followUpFromRow(row), path: row.path }));
  }

  async claimFollowUp(jobId: number, kind: FollowUpKind, { mustBeDue }: { mustBeDue: boolean }): Promise<FollowUp | undefined> {
    return this.commit(() => {
      const row = this.sql('SELECT * FROM follow_ups WHERE job_id = ? AND kind = ?').get(jobId, kind) as FollowUpRow | undefined;
      const now = this.now();
      if (!row || (mustBeDue && row.due_at > now) || !this.free(followUpFromRow(row))) return undefined;
      const leaseUntil = now + this.leaseMs;
      this.sql('UPDATE follow_ups SET owner_pid = ?, lease_until = ? WHERE job_id = ? AND kind = ?').run(this.pid, leaseUntil, jobId, kind);
      return followUpFromRow({ ...row, owner_pid: this.pid, lease_until: leaseUntil });
    });
  }

  async finishFollowUp(jobId: number, kind: FollowUpKind): Promise<void> {
    this.commit(() => this.sql('DELETE FROM follow_ups WHERE job_id = ? AND kind = ? AND owner_pid = ?').run(jobId, kind, this.pid));
  }

  async postponeFollowUp(jobId: number, kind: FollowUpKind, patch: { dueAt: number; failures?: number; error?: string }): Promise<void> {
    const error = patch.error === undefined ? null : redactSignedUrls(patch.error);
    this.commit(() =>
      this.sql(
        `UPDATE follow_ups SET due_at = ?, failures = coalesce(?, failures), error = coalesce(?, error), owner_pid = NULL, lease_until = NULL
         WHERE job_id = ? AND kind = ? AND owner_pid = ?`,
      ).run(Math.round(patch.dueAt), patch.failures ?? null, error, jobId, kind, this.pid),
    );
  }

  async downloads(jobId: number): Promise<Download[]> {
    return this.sql('SELECT name, path, bytes, sha256 FROM downloads WHERE job_id = ? ORDER BY name').all(jobId) as Download[];
  }

  async forgetDownload(jobId: number, name: string): Promise<void> {
    this.commit(() => this.sql('DELETE FROM downloads WHERE job_id = ? AND name = ?').run(jobId, name));
  }

  async recordDownload(jobId: number, download: Download): Promise<void> {
    this.commit(() =>
      this.sql('INSERT INTO downloads (job_id, name, path, bytes, sha256) VALUES (?, ?, ?, ?, ?)').run(jobId, download.name, download.path, download.bytes, download.sha256),
    );
  }

  /**
   * A row that sends holds its beginning (`head_sha256`) while `uploading`;
   * another file of the folder with the same size and beginning waits for
   * it, then finds its stored upload.
   */
  async reserveUpload(job: Job, headSha256: string, sha256?: string): Promise<UploadReservation> {
    return this.commit(() => this.reserve(job, headSha256, sha256));
  }

  private reserve(job: Job, headSha256: string, sha256?: string): UploadReservation {
    if (!this.isOwnUpload(this.row(job.id))) return { kind: 'lost' };
    if (sha256 !== undefined) {
      const original = this.findUploaded(job.folder, sha256, job.id);
      if (original) return { kind: 'duplicate', original };
    } else if (this.hasUploadOfHead(job.folder, job.size, headSha256, job.id)) {
      return { kind: 'hash' };
    }
    // `+state`: the folder, size and head index holds the few candidates; the state index would walk every uploading row.
    // A queued or retrying row holding the beginning had its attempt cut short, maybe after its last byte: it is the one to send them.
    const holder = this.sql(`SELECT * FROM jobs WHERE folder = ? AND size = ? AND head_sha256 = ? AND id != ? AND +state IN ('uploading', 'queued', 'retrying') ORDER BY id LIMIT 1`)
      .get(job.folder, job.size, headSha256, job.id) as JobRow | undefined;
    // Waiting, it holds nothing: two rows that each kept a beginning must not wait for each other.
    this.sql('UPDATE jobs SET head_sha256 = ? WHERE id = ?').run(holder ? null : headSha256, job.id);
    return holder ? { kind: 'wait', holder: fromRow(holder) } : { kind: 'send' };
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

  async counts(): Promise<Record<State, number>> {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<State, number>;
    const rows = this.sql('SELECT state, COUNT(*) AS n FROM jobs WHERE current = 1 GROUP BY state').all() as { state: State; n: number }[];
    for (const { state, n } of rows) counts[state] = n;
    return counts;
  }

  /** Live versions, newest first. */
  async list(state?: State): Promise<Job[]> {
    const rows = (
      state
        ? this.sql('SELECT * FROM jobs WHERE current = 1 AND state = ? ORDER BY id DESC').all(state)
        : this.sql('SELECT * FROM jobs WHERE current = 1 ORDER BY id DESC').all()
    ) as JobRow[];
    return rows.map(fromRow);
  }

  /** Live versions, most recently changed first. */
  async recent(limit: number): Promise<Job[]> {
    const rows = this.sql('SELECT * FROM jobs WHERE current = 1 ORDER BY updated_at DESC LIMIT ?').all(limit) as JobRow[];
    return rows.map(fromRow);
  }

  /** Files that reached `done` since `since` (epoch ms). */
  async doneSince(since: number): Promise<number> {
    // `+state` keeps SQLite off the state index, which would walk every done row ever; today's are a short range of jobs_recent.
    const row = this.sql(`SELECT COUNT(*) AS n FROM jobs WHERE current = 1 AND updated_at >= ? AND +state = 'done'`).get(since) as { n: number };
    return row.n;
  }

  async oldestPending(): Promise<Job | undefined> {
    const row = this.sql(`SELECT * FROM jobs WHERE current = 1 AND state IN ('waiting', 'queued', 'uploading', 'retrying') ORDER BY created_at LIMIT 1`)
      .get() as JobRow | undefined;
    return row && fromRow(row);
  }

  async beat(): Promise<void> {
    const previous = this.daemonValue<StoredHeartbeat>(HEARTBEAT_KEY);
    const startedAt = previous?.pid === this.pid ? previous.startedAt : this.now();
    this.setDaemonValue(HEARTBEAT_KEY, { host: hostname(), pid: this.pid, startedAt, lastSeenAt: this.now() } satisfies StoredHeartbeat);
  }

  /** One machine, one daemon: the last that beat, unless more than a day ago. */
  async heartbeats(): Promise<Heartbeat[]> {
    const last = this.daemonValue<StoredHeartbeat>(HEARTBEAT_KEY);
    if (!last || this.now() - last.lastSeenAt > DAY_MS) return [];
    return [{ host: last.host, pid: last.pid, startedAt: last.startedAt, silentMs: this.now() - last.lastSeenAt }];
  }

  async setPaused(pause: PauseState | null): Promise<void> {
    this.setDaemonValue(PAUSE_KEY, pause);
  }

  async paused(): Promise<PauseState | null> {
    return this.daemonValue<PauseState>(PAUSE_KEY) ?? null;
  }

  /** The running daemon's word on its folders, for `status` in another process: written whenever a folder's problem changes. */
  async setFolderStates(states: readonly FolderState[]): Promise<void> {
    this.setDaemonValue(FOLDERS_KEY, states);
  }

  /** As the daemon last wrote them; empty when no daemon ever did. */
  async folderStates(): Promise<FolderState[]> {
    return this.daemonValue<FolderState[]>(FOLDERS_KEY) ?? [];
  }

  /** The running daemon's caps in force (BandwidthState), for `status` in another process; null when it stops. */
  async setBandwidth(state: unknown): Promise<void> {
    this.setDaemonValue(BANDWIDTH_KEY, state);
  }

  async bandwidth(): Promise<unknown> {
    return this.daemonValue<unknown>(BANDWIDTH_KEY) ?? null;
  }

  /** null removes the key: nothing to say. */
  private setDaemonValue(key: string, value: unknown): void {
    this.commit(() =>
      value === null
        ? this.sql('DELETE FROM daemon WHERE key = ?').run(key)
        : this.sql('INSERT INTO daemon (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value)),
    );
  }

  private daemonValue<T>(key: string): T | undefined {
    const row = this.sql('SELECT value FROM daemon WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }
}
