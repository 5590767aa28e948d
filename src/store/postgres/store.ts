import { randomUUID } from 'node:crypto';
import type { Download, FolderState, FollowUp, FollowUpKind, Job, PauseState, TransitionEvent, TransitionPatch, UploadReservation } from '../job.js';
import { callEach } from '../groupCommit.js';
import { FINAL_STATES, STATES, assertTransition, type State } from '../states.js';
import { LEASE_MS, sightingOf, NEXT_UPLOAD_ORDER, type Decide, type Heartbeat, type JobStore, type KnownVersion, type Move, type NewFollowUp, type NewVersion } from '../store.js';
import { redactSignedUrls } from '../../net/redact.js';
import { patchColumns } from '../patch.js';
import { Connection, type Query } from './connection.js';
import { claimedBy, free, leaseFor } from './leases.js';
import { advisoryLock } from './locks.js';
import { migrate } from './migrate.js';
import { validateOptions, type PostgresStoreOptions } from './options.js';
import { reservationFacts } from './reservation.js';
import { FOLLOW_UP_COLUMNS, JOB_COLUMNS, toFollowUp, toStoredJob, type FollowUpRow, type JobRow, type StoredJob } from './rows.js';
import { Shares, type SharedPath } from './shares.js';

const AFTER_UPLOAD_STATES: readonly State[] = ['mastering', 'downloading'];

const PAUSE_KEY = 'paused';
const FOLDERS_KEY = 'folders';
const BANDWIDTH_KEY = 'bandwidth';
/** The `daemon.host` of values that are every daemon's, not one host's. */
const EVERY_HOST = '';

type StepPatch = Pick<TransitionPatch, 'nextAttemptAt' | 'masteringRequested' | 'masteringStatus' | 'masteringPercent' | 'stepFailures' | 'error' | 'masteringPlan'>;

/** A transaction in progress: its statements, and the transitions it wrote, announced only once it has committed. */
interface Tx {
  query: Query;
  events: TransitionEvent[];
  /** A move made work due that other daemons should hear of (see listenForWork). */
  wakes?: boolean;
}

/** The channel daemons sharing the queue hear of new work on. */
const WORK_CHANNEL = 'cryomix_work';

/** States a row enters with work for some daemon to start: an upload, a retry, a mastering step. */
const WORK_STATES: readonly State[] = ['queued', 'retrying', 'mastering', 'downloading'];

/**
 * The job rows in PostgreSQL: one queue for several daemons on several
 * machines, each a holder of its claims. Every method that reads and then
 * writes is one transaction on one pooled connection, and a claim takes
 * its row with `FOR NO KEY UPDATE SKIP LOCKED`, so of two daemons claiming
 * at once one gets the row and the other moves on. Leases are timed by the
 * database's clock. The state machine is states.ts's table, checked here
 * before every write of `state`.
 *
 * Paths are this machine's: the rows hold them as share + path below the
 * folder (see Shares). The methods that hand out work (claims, what is due
 * or unfinished) see only the shares this machine has folders for; the
 * listings for `list` and `status` see every machine's rows.
 */
export class PostgresJobStore implements JobStore {
  private readonly connection: Connection;
  private readonly shares: Shares;
  private readonly onTransition: ((event: TransitionEvent) => void) | undefined;
  private readonly now: () => number;
  private readonly leaseMs: number;
  private readonly host: string;
  private readonly pid: number;
  /** This holder, as rows name it: a restarted daemon that got the same pid is another holder. */
  readonly owner: string;

  /**
   * Connects, brings the schema up to date (several daemons may start at
   * once: they take turns), and returns the store of one holder. Throws
   * PostgresUnavailableError when the database cannot be reached.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresJobStore> {
    validateOptions(options);
    const connection = new Connection(options);
    try {
      await connection.check();
      await migrate(connection);
    } catch (error) {
      await connection.close();
      throw error;
    }
    return new PostgresJobStore(connection, options);
  }

  private constructor(connection: Connection, options: PostgresStoreOptions) {
    this.connection = connection;
    this.shares = new Shares(options.folders);
    this.onTransition = options.onTransition;
    this.now = options.now ?? Date.now;
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    this.host = options.holder.host;
    this.pid = options.holder.pid;
    this.owner = `${this.host}:${this.pid}:${randomUUID()}`;
  }

  async beat(): Promise<void> {
    await this.statement(`INSERT INTO hosts (owner, host, pid) VALUES ($1, $2, $3) ON CONFLICT (owner) DO UPDATE SET last_seen = now()`, [this.owner, this.host, this.pid]);
  }

  /** Runs heard from in the last day, on the database's clock: machines' own clocks differ. */
  async heartbeats(): Promise<Heartbeat[]> {
    const { rows } = await this.statement<Heartbeat>(
      `SELECT host, pid, (extract(epoch FROM started_at) * 1000)::float8 AS "startedAt", (extract(epoch FROM now() - last_seen) * 1000)::float8 AS "silentMs"
       FROM hosts WHERE last_seen > now() - interval '1 day' ORDER BY host, started_at`,
    );
    return rows;
  }

  /** Each commit that makes work due ends with NOTIFY, which PostgreSQL delivers to every daemon listening once it commits. */
  listenForWork(onWork: () => void): () => void {
    return this.connection.listen(WORK_CHANNEL, onWork);
  }

  /** Closes the connections this store opened; its claims stay until their leases lapse. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  /** A COMMIT that has returned is durable (synchronous_commit on, PostgreSQL's default). */
  durable(): Promise<void> {
    return Promise.resolve();
  }

  /** Runs `work` as one transaction; its transitions are announced after COMMIT, and never when it rolled back. */
  private async commit<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const events: TransitionEvent[] = [];
    const result = await this.connection.transaction(async (query) => {
      const tx: Tx = { query, events };
      const done = await work(tx);
      // Delivered by PostgreSQL at COMMIT, and only then: no daemon hears of work a rollback undid.
      if (tx.wakes) await query(`NOTIFY ${WORK_CHANNEL}`);
      return done;
    });
    const listener = this.onTransition;
    if (listener) callEach(events.map((event) => () => listener(event)));
    return result;
  }

  private stored(row: JobRow): StoredJob {
    return toStoredJob(row, this.shares);
  }

  private jobs(rows: readonly JobRow[]): Job[] {
    return rows.map((row) => this.stored(row).job);
  }

  private isFree(row: StoredJob): boolean {
    return row.owner === null || row.owner === this.owner || !row.leaseLive;
  }

  /** The row is this holder's upload in progress: only then may its attempt file an outcome or hold its bytes. */
  private isOwnUpload(row: StoredJob): boolean {
    return row.job.state === 'uploading' && row.owner === this.owner;
  }

  private async find(query: Query, id: number): Promise<StoredJob | undefined> {
    const { rows } = await query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1`, [id]);
    return rows[0] && this.stored(rows[0]);
  }

  private async mustFind(query: Query, id: number): Promise<StoredJob> {
    const row = await this.find(query, id);
    if (!row) throw new Error(`job ${id} does not exist`);
    return row;
  }

  /**
   * The row, locked until the transaction ends. NO KEY UPDATE is the lock an
   * UPDATE takes: it keeps out every other writer of the row, but not the
   * foreign-key checks of rows that point at it (a download, a duplicate).
   * With `skipLocked`, a row another transaction holds reads as undefined.
   */
  private async lock(query: Query, id: number, { skipLocked = false } = {}): Promise<StoredJob | undefined> {
    const { rows } = await query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1 FOR NO KEY UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`, [id]);
    return rows[0] && this.stored(rows[0]);
  }

  private async mustLock(query: Query, id: number): Promise<StoredJob> {
    const row = await this.lock(query, id);
    if (!row) throw new Error(`job ${id} does not exist`);
    return row;
  }

  /** A row another transaction holds, or one that does not exist (which is a bug, as on SQLite)? */
  private async skipped(query: Query, id: number): Promise<undefined> {
    await this.mustFind(query, id);
    return undefined;
  }

  async get(id: number): Promise<Job> {
    return (await this.mustFind(this.statement, id)).job;
  }

  /** Statements outside a transaction: each is one of its own. */
  private readonly statement: Query = (text, values) => this.connection.statement(text, values);

  async current(path: string): Promise<Job | undefined> {
    const { share, relative } = this.shares.ofPath(path);
    const { rows } = await this.statement<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE share = $1 AND rel_path = $2 AND current`, [share, relative]);
    return rows[0] && this.stored(rows[0]).job;
  }

  /** One directory's rows are one range of jobs_current_path: rel_path is byte-ordered (COLLATE "C"), and '0' follows '/'. */
  async versionsInDirectory(folder: string, directory: string): Promise<Map<string, KnownVersion>> {
    const { share, relative } = this.shares.inFolder(folder, directory);
    const prefix = relative === '' ? '' : `${relative}/`;
    const { rows } = await this.statement<{ rel_path: string; state: State; size: number; mtime_ms: number }>(
      `SELECT rel_path, state, size, mtime_ms FROM jobs
       WHERE share = $1 AND current AND rel_path >= $2 AND ($3::text IS NULL OR rel_path < $3) AND strpos(substr(rel_path, length($2) + 1), '/') = 0`,
      [share, prefix, prefix === '' ? null : `${prefix.slice(0, -1)}0`],
    );
    return new Map(rows.map((row) => [this.shares.local({ share, relative: row.rel_path }).path, { state: row.state, size: row.size, mtimeMs: row.mtime_ms }]));
  }

  /**
   * No two versions of one path are ever both live. Two daemons that see the
   * same file at once take turns on the path's advisory lock, so the second
   * finds the first's row (and replaces it, as this method always does).
   */
  async createVersion(version: NewVersion): Promise<Job> {
    const key = this.shares.inFolder(version.folder, version.path);
    const now = this.now();
    return this.commit(async (tx) => {
      await tx.query(advisoryLock('version'), [`${key.share}\n${key.relative}`]);
      const previous = await this.lockCurrent(tx.query, key);
      const sighting = previous && sightingOf(previous.job, version);
      if (sighting === 'keep') return previous!.job;
      if (sighting === 'follow') {
        const { rows } = await tx.query<JobRow>(`UPDATE jobs SET size = $2, mtime_ms = $3 WHERE id = $1 RETURNING ${JOB_COLUMNS}`, [previous!.job.id, version.size, version.mtimeMs]);
        return this.stored(rows[0]!).job;
      }
      // Its bytes are stored; only the after-upload step is skipped for a file that has changed since.
      if (previous?.job.state === 'uploaded') await this.move(tx, previous, { to: 'done' });
      // Mastering and downloading carry on: the masters of the uploaded version are still wanted.
      else if (previous && !FINAL_STATES.includes(previous.job.state) && !AFTER_UPLOAD_STATES.includes(previous.job.state)) {
        await this.move(tx, previous, { to: 'removed', patch: { error: 'replaced by a newer version of the file' } });
      }
      if (previous) await tx.query('UPDATE jobs SET current = false WHERE id = $1', [previous.job.id]);
      const { rows } = await tx.query<JobRow>(
        `INSERT INTO jobs (session_id, share, rel_path, size, mtime_ms, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'waiting', $6, $6) RETURNING ${JOB_COLUMNS}`,
        [randomUUID(), key.share, key.relative, version.size, version.mtimeMs, now],
      );
      const job = this.stored(rows[0]!).job;
      tx.events.push({ job, from: null, durationMs: 0 });
      return job;
    });
  }

  private async lockCurrent(query: Query, { share, relative }: SharedPath): Promise<StoredJob | undefined> {
    const { rows } = await query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE share = $1 AND rel_path = $2 AND current FOR NO KEY UPDATE`, [share, relative]);
    return rows[0] && this.stored(rows[0]);
  }

  async updateWaiting(id: number, size: number, mtimeMs: number): Promise<void> {
    await this.statement(`UPDATE jobs SET size = $2, mtime_ms = $3 WHERE id = $1 AND state = 'waiting'`, [id, size, mtimeMs]);
  }

  async transition(id: number, to: State, patch: TransitionPatch = {}, followUps: readonly NewFollowUp[] = []): Promise<Job> {
    return this.commit(async (tx) => (await this.move(tx, await this.mustLock(tx.query, id), { to, patch, followUps })).job);
  }

  async transitionIf(id: number, from: State, to: State, patch: (job: Job) => TransitionPatch = () => ({})): Promise<Job | undefined> {
    return this.commit(async (tx) => this.moveWhen(tx, await this.mustLock(tx.query, id), (job) => (job.state === from ? [{ to, patch: patch(job) }] : [])));
  }

  async moveIf(id: number, decide: Decide): Promise<Job | undefined> {
    return this.commit(async (tx) => this.moveWhen(tx, await this.mustLock(tx.query, id), decide));
  }

  /**
   * The only writer of `state`: each move is checked against the table, and
   * its follow-ups are due in the same commit. `before` is the row as locked
   * by this transaction; with `claim`, this holder takes it with a fresh lease.
   */
  private async move(tx: Tx, before: StoredJob, { to, patch = {}, followUps = [] }: Move, { claim = false } = {}): Promise<StoredJob> {
    const { id } = before.job;
    assertTransition(id, before.job.state, to);
    const after = await this.update(tx.query, id, { state: to, updated_at: this.now() }, patch, claim);
    for (const followUp of followUps) await this.addFollowUp(tx.query, id, followUp);
    if (WORK_STATES.includes(to) || followUps.length > 0) tx.wakes = true;
    // Machines' clocks differ: a row last moved by another machine may look as if it moved in this one's future.
    tx.events.push({ job: after.job, from: before.job.state, durationMs: Math.max(0, after.job.updatedAt - before.job.updatedAt) });
    return after;
  }

  /** Within a transaction: the moves `decide` makes of the locked row, one after the other; the row after them, or undefined when it made none. */
  private async moveWhen(tx: Tx, row: StoredJob, decide: Decide): Promise<Job | undefined> {
    let current = row;
    let moved = false;
    for (const next of decide(row.job)) {
      current = await this.move(tx, current, next);
      moved = true;
    }
    return moved ? current.job : undefined;
  }

  /** Writes `columns` as given and `patch` in one statement, and returns the row as written. */
  private async update(query: Query, id: number, columns: Record<string, unknown>, patch: TransitionPatch, claim = false): Promise<StoredJob> {
    const values: unknown[] = [id];
    const sets: string[] = [];
    const set = (column: string, value: unknown) => {
      values.push(value);
      sets.push(`${column} = $${values.length}`);
    };
    for (const [column, value] of Object.entries(columns)) set(column, value);
    for (const [column, value] of patchColumns(patch)) set(column, value);
    if (claim) {
      values.push(this.owner, this.pid, this.host, this.leaseMs);
      sets.push(claimedBy(values.length - 3));
    }
    const { rows } = await query<JobRow>(
      sets.length === 0 ? `SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1` : `UPDATE jobs SET ${sets.join(', ')} WHERE id = $1 RETURNING ${JOB_COLUMNS}`,
      values,
    );
    if (!rows[0]) throw new Error(`job ${id} does not exist`);
    return this.stored(rows[0]);
  }

  /**
   * Takes the row with SKIP LOCKED: a row another daemon is claiming this
   * instant is not ours, and nobody waits for it. The claim and, with the
   * file's beginning, its reservation are one commit.
   */
  async claimUpload(id: number, headSha256?: string): Promise<{ job: Job; reservation?: UploadReservation } | undefined> {
    return this.commit(async (tx) => {
      const row = await this.lock(tx.query, id, { skipLocked: true });
      if (!row) return this.skipped(tx.query, id);
      if (row.job.state !== 'queued') return undefined;
      const claimed = await this.claimQueued(tx, row);
      return headSha256 === undefined ? { job: claimed.job } : { job: claimed.job, reservation: await this.reserve(tx.query, claimed, claimed.job, headSha256) };
    });
  }

  /**
   * The queue's head for this machine's shares: the oldest queued row no
   * other transaction holds. SKIP LOCKED lets several daemons pop the same
   * queue at once, each taking a different row, none waiting.
   */
  async claimNextUpload(): Promise<Job | undefined> {
    return this.commit(async (tx) => {
      const { rows } = await tx.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM jobs WHERE state = 'queued' AND share = ANY($1) ORDER BY ${NEXT_UPLOAD_ORDER} LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED`,
        [this.shares.names],
      );
      return rows[0] && (await this.claimQueued(tx, this.stored(rows[0]))).job;
    });
  }

  /** A queued row locked by this transaction becomes this holder's upload, with a fresh lease. */
  private claimQueued(tx: Tx, row: StoredJob): Promise<StoredJob> {
    return this.move(
      tx,
      row,
      {
        to: 'uploading',
        // A beginning it holds is kept (see NEXT_UPLOAD_ORDER): uploading again, it holds it for its twins at once.
        patch: { attempts: row.job.attempts + 1, error: null, nextAttemptAt: null, bytesSent: 0 },
      },
      { claim: true },
    );
  }

  /** Only the holder's own upload, whatever its lease says: a lapsed lease nobody took over is still this holder's row. */
  async renewLease(id: number): Promise<boolean> {
    const { rowCount } = await this.statement(
      `UPDATE jobs SET lease_until = ${leaseFor('$3')} WHERE id = $1 AND state = 'uploading' AND owner = $2`,
      [id, this.owner, this.leaseMs],
    );
    return (rowCount ?? 0) > 0;
  }

  /** One conditional UPDATE: a claim another transaction holds is waited for (briefly), then judged as it committed. */
  async claimStep(id: number): Promise<boolean> {
    const { rowCount } = await this.statement(
      `UPDATE jobs SET ${claimedBy(2)} WHERE id = $1 AND state IN ('mastering', 'downloading') AND ${free('$2')}`,
      [id, this.owner, this.pid, this.host, this.leaseMs],
    );
    if ((rowCount ?? 0) > 0) return true;
    await this.mustFind(this.statement, id);
    return false;
  }

  async fileOutcome(id: number, to: State, patch: TransitionPatch = {}, then: Decide = () => []): Promise<Job | undefined> {
    return this.commit(async (tx) => {
      const row = await this.mustLock(tx.query, id);
      if (!this.isOwnUpload(row)) return undefined;
      const filed = await this.move(tx, row, { to, patch });
      return (await this.moveWhen(tx, filed, then)) ?? filed.job;
    });
  }

  /**
   * Another machine's process cannot be asked whether it lives: an upload
   * is orphaned when its lease has lapsed (or it is this holder's and not
   * running here). Each row is judged again within its own commit.
   */
  async releaseOrphanedUploads(isRunningHere: (jobId: number) => boolean): Promise<void> {
    const now = this.now();
    const resume: Move[] = [{ to: 'retrying', patch: { nextAttemptAt: now, error: 'interrupted while uploading (its uploader stopped); resuming' } }];
    const { rows } = await this.statement<{ id: number }>(
      `SELECT id FROM jobs WHERE state = 'uploading' AND share = ANY($1) AND ${free('$2')} ORDER BY id`,
      [this.shares.names, this.owner],
    );
    for (const { id } of rows) {
      if (isRunningHere(id)) continue;
      await this.commit(async (tx) => {
        const row = await this.lock(tx.query, id, { skipLocked: true });
        if (row && row.job.state === 'uploading' && this.isFree(row) && !isRunningHere(id)) await this.moveWhen(tx, row, () => resume);
      });
    }
  }

  async annotate(id: number, message: string): Promise<void> {
    await this.statement('UPDATE jobs SET error = $2 WHERE id = $1', [id, redactSignedUrls(message)]);
  }

  async recordProgress(id: number, bytesSent: number): Promise<void> {
    await this.statement('UPDATE jobs SET bytes_sent = $2 WHERE id = $1', [id, bytesSent]);
  }

  async queuedIds(limit: number): Promise<number[]> {
    const { rows } = await this.statement<{ id: number }>(`SELECT id FROM jobs WHERE state = 'queued' AND share = ANY($1) ORDER BY id LIMIT $2`, [this.shares.names, limit]);
    return rows.map((row) => row.id);
  }

  /** This machine's shares only: the pipeline acts on what it gets (finishes uploads, settles waiting files). */
  async inState(state: State, limit = -1): Promise<Job[]> {
    const { rows } = await this.statement<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE state = $1 AND share = ANY($2) ORDER BY id LIMIT $3`, [
      state,
      this.shares.names,
      limit < 0 ? null : limit,
    ]);
    return this.jobs(rows);
  }

  /** This machine's shares only: the startup reconcile compares them with its own disks. */
  async unfinished(): Promise<Job[]> {
    // Literal states, as in the condition of the jobs_unfinished index, which the planner must be able to match.
    const { rows } = await this.statement<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE current AND state NOT IN (${FINAL_STATES.map((state) => `'${state}'`).join(', ')}) AND share = ANY($1) ORDER BY id`,
      [this.shares.names],
    );
    return this.jobs(rows);
  }

  async dueRetries(now: number): Promise<Job[]> {
    const { rows } = await this.statement<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE state = 'retrying' AND next_attempt_at <= $1 AND share = ANY($2) ORDER BY next_attempt_at`,
      [now, this.shares.names],
    );
    return this.jobs(rows);
  }

  /**
   * Due times are the pipeline's (epoch ms, written by the machines' clocks);
   * a live claim on a follow-up is judged by the database's clock, and its
   * end read as Job.leaseUntil reads it. `now` is not needed: nothing here is
   * compared with this machine's clock.
   */
  async nextDueAt(_now?: number): Promise<number | null> {
    const { rows } = await this.statement<{ at: number | null }>(
      `SELECT MIN(at) AS at FROM (
         SELECT MIN(next_attempt_at)::float8 AS at FROM jobs WHERE state IN ('retrying', 'mastering', 'downloading') AND share = ANY($1)
         UNION ALL
         SELECT MIN(CASE WHEN f.lease_until > now() THEN (extract(epoch FROM f.lease_until) * 1000)::float8 ELSE f.due_at::float8 END)
         FROM follow_ups f JOIN jobs j ON j.id = f.job_id WHERE j.share = ANY($1)
       ) due`,
      [this.shares.names],
    );
    return rows[0]?.at ?? null;
  }

  async dueSteps(now: number, limit: number): Promise<Job[]> {
    const { rows } = await this.statement<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs
       WHERE state IN ('mastering', 'downloading') AND next_attempt_at <= $1 AND share = ANY($2) AND ${free('$3')}
       ORDER BY next_attempt_at LIMIT $4`,
      [now, this.shares.names, this.owner, limit],
    );
    return this.jobs(rows);
  }

  async updateStep(id: number, patch: StepPatch): Promise<void> {
    await this.update(this.statement, id, {}, patch);
  }

  async downloadsWaitingSince(since: number): Promise<number> {
    const { rows } = await this.statement<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'downloading' AND updated_at < $1`, [since]);
    return rows[0]?.n ?? 0;
  }

  /** Makes a follow-up due now, replacing one of the same kind; only ever within the commit of the move that makes it due. */
  private async addFollowUp(query: Query, jobId: number, { kind, plan }: NewFollowUp): Promise<void> {
    await query(
      `INSERT INTO follow_ups (job_id, kind, plan, due_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (job_id, kind) DO UPDATE SET plan = excluded.plan, due_at = excluded.due_at, failures = 0, error = NULL,
         owner = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL`,
      [jobId, kind, JSON.stringify(plan) ?? 'null', this.now()],
    );
  }


  async followUps(jobId: number): Promise<FollowUp[]> {
    const { rows } = await this.statement<FollowUpRow>(`SELECT ${FOLLOW_UP_COLUMNS()} FROM follow_ups WHERE job_id = $1 ORDER BY kind`, [jobId]);
    return rows.map(toFollowUp);
  }

  async dueFollowUps(now: number, limit: number): Promise<FollowUp[]> {
    const { rows } = await this.statement<FollowUpRow>(
      `SELECT ${FOLLOW_UP_COLUMNS('f')} FROM follow_ups f JOIN jobs j ON j.id = f.job_id
       WHERE f.due_at <= $1 AND j.share = ANY($2) AND ${free('$3', 'f')} ORDER BY f.due_at LIMIT $4`,
      [now, this.shares.names, this.owner, limit],
    );
    return rows.map(toFollowUp);
  }

  async followUpCounts(): Promise<{ kind: FollowUpKind; pending: number; failing: number }[]> {
    const { rows } = await this.statement<{ kind: FollowUpKind; pending: number; failing: number }>(
      'SELECT kind, COUNT(*) AS pending, COUNT(*) FILTER (WHERE failures > 0) AS failing FROM follow_ups GROUP BY kind ORDER BY kind',
    );
    return rows;
  }

  async failingFollowUps(limit: number): Promise<(FollowUp & { path: string })[]> {
    const { rows } = await this.statement<FollowUpRow & { share: string; rel_path: string }>(
      `SELECT ${FOLLOW_UP_COLUMNS('f')}, j.share, j.rel_path FROM follow_ups f JOIN jobs j ON j.id = f.job_id WHERE f.failures > 0 ORDER BY f.job_id LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ ...toFollowUp(row), path: this.shares.local({ share: row.share, relative: row.rel_path }).path }));
  }

  /** One conditional UPDATE, as claimStep. */
  async claimFollowUp(jobId: number, kind: FollowUpKind, { mustBeDue }: { mustBeDue: boolean }): Promise<FollowUp | undefined> {
    const { rows } = await this.statement<FollowUpRow>(
      `UPDATE follow_ups SET ${claimedBy(5)}
       WHERE job_id = $1 AND kind = $2 AND (NOT $3::boolean OR due_at <= $4) AND ${free('$5')}
       RETURNING ${FOLLOW_UP_COLUMNS()}`,
      [jobId, kind, mustBeDue, this.now(), this.owner, this.pid, this.host, this.leaseMs],
    );
    return rows[0] && toFollowUp(rows[0]);
  }

  async finishFollowUp(jobId: number, kind: FollowUpKind): Promise<void> {
    await this.statement('DELETE FROM follow_ups WHERE job_id = $1 AND kind = $2 AND owner = $3', [jobId, kind, this.owner]);
  }

  async postponeFollowUp(jobId: number, kind: FollowUpKind, patch: { dueAt: number; failures?: number; error?: string }): Promise<void> {
    await this.statement(
      `UPDATE follow_ups SET due_at = $4, failures = coalesce($5, failures), error = coalesce($6, error), owner = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL
       WHERE job_id = $1 AND kind = $2 AND owner = $3`,
      [jobId, kind, this.owner, Math.round(patch.dueAt), patch.failures ?? null, patch.error === undefined ? null : redactSignedUrls(patch.error)],
    );
  }

  async downloads(jobId: number): Promise<Download[]> {
    const { rows } = await this.statement<Download>('SELECT name, path, bytes, sha256 FROM downloads WHERE job_id = $1 ORDER BY name', [jobId]);
    return rows;
  }

  async forgetDownload(jobId: number, name: string): Promise<void> {
    await this.statement('DELETE FROM downloads WHERE job_id = $1 AND name = $2', [jobId, name]);
  }

  async recordDownload(jobId: number, download: Download): Promise<void> {
    await this.statement('INSERT INTO downloads (job_id, name, path, bytes, sha256) VALUES ($1, $2, $3, $4, $5)', [
      jobId,
      download.name,
      download.path,
      download.bytes,
      download.sha256,
    ]);
  }

  /**
   * A row that sends holds its beginning (`head_sha256`) while `uploading`;
   * another file of the share with the same size and beginning waits for
   * it, then finds its stored upload.
   */
  async reserveUpload(job: Job, headSha256: string, sha256?: string): Promise<UploadReservation> {
    return this.commit(async (tx) => this.reserve(tx.query, await this.mustLock(tx.query, job.id), job, headSha256, sha256));
  }

  /** Decides for `row` (locked by this transaction) whether it sends, judged by `job`'s share and size (see reservationFacts). */
  private async reserve(query: Query, row: StoredJob, job: Job, headSha256: string, sha256?: string): Promise<UploadReservation> {
    if (!this.isOwnUpload(row)) return { kind: 'lost' };
    const facts = await reservationFacts(query, { id: job.id, share: this.shares.shareOf(job.folder), size: job.size, headSha256, sha256 });
    if (sha256 !== undefined) {
      if (facts.original !== null) return { kind: 'duplicate', original: (await this.mustFind(query, facts.original)).job };
    } else if (facts.storedHead) {
      return { kind: 'hash' };
    }
    // Waiting, it holds nothing: two rows that each kept a beginning must not wait for each other.
    await query('UPDATE jobs SET head_sha256 = $2 WHERE id = $1', [job.id, facts.holder === null ? headSha256 : null]);
    if (facts.holder !== null) return { kind: 'wait', holder: (await this.mustFind(query, facts.holder)).job };
    return { kind: 'send' };
  }

  async counts(): Promise<Record<State, number>> {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<State, number>;
    const { rows } = await this.statement<{ state: State; n: number }>('SELECT state, COUNT(*) AS n FROM jobs WHERE current GROUP BY state');
    for (const { state, n } of rows) counts[state] = n;
    return counts;
  }

  /** Live versions of every machine's shares, newest first. */
  async list(state?: State): Promise<Job[]> {
    const { rows } =
      state === undefined
        ? await this.statement<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE current ORDER BY id DESC`)
        : await this.statement<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE current AND state = $1 ORDER BY id DESC`, [state]);
    return this.jobs(rows);
  }

  async recent(limit: number): Promise<Job[]> {
    const { rows } = await this.statement<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE current ORDER BY updated_at DESC, id DESC LIMIT $1`, [limit]);
    return this.jobs(rows);
  }

  async doneSince(since: number): Promise<number> {
    const { rows } = await this.statement<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs WHERE current AND updated_at >= $1 AND state = 'done'`, [since]);
    return rows[0]?.n ?? 0;
  }

  async oldestPending(): Promise<Job | undefined> {
    const { rows } = await this.statement<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE current AND state IN ('waiting', 'queued', 'uploading', 'retrying') ORDER BY created_at, id LIMIT 1`,
    );
    return rows[0] && this.stored(rows[0]).job;
  }

  /** The API key's pause: every daemon uses the same key, so one daemon's word holds for all. */
  async setPaused(pause: PauseState | null): Promise<void> {
    await this.setDaemonValue(EVERY_HOST, PAUSE_KEY, pause);
  }

  async paused(): Promise<PauseState | null> {
    return (await this.daemonValue<PauseState>(EVERY_HOST, PAUSE_KEY)) ?? null;
  }

  /** This host's daemon's word on its folders (its own mounts), for `status` on this host. */
  async setFolderStates(states: readonly FolderState[]): Promise<void> {
    await this.setDaemonValue(this.host, FOLDERS_KEY, states);
  }

  async folderStates(): Promise<FolderState[]> {
    return (await this.daemonValue<FolderState[]>(this.host, FOLDERS_KEY)) ?? [];
  }

  /** This host's daemon's caps in force (each machine has its own uplink); null when it stops. */
  async setBandwidth(state: unknown): Promise<void> {
    await this.setDaemonValue(this.host, BANDWIDTH_KEY, state);
  }

  async bandwidth(): Promise<unknown> {
    return (await this.daemonValue<unknown>(this.host, BANDWIDTH_KEY)) ?? null;
  }

  /** null removes the key: nothing to say. */
  private async setDaemonValue(host: string, key: string, value: unknown): Promise<void> {
    if (value === null) {
      await this.statement('DELETE FROM daemon WHERE host = $1 AND key = $2', [host, key]);
      return;
    }
    await this.statement('INSERT INTO daemon (host, key, value) VALUES ($1, $2, $3) ON CONFLICT (host, key) DO UPDATE SET value = excluded.value', [
      host,
      key,
      JSON.stringify(value),
    ]);
  }

  private async daemonValue<T>(host: string, key: string): Promise<T | undefined> {
    const { rows } = await this.statement<{ value: T }>('SELECT value FROM daemon WHERE host = $1 AND key = $2', [host, key]);
    return rows[0]?.value;
  }
}
