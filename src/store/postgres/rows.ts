import type { FollowUp, FollowUpKind, Job } from '../job.js';
import type { State } from '../states.js';
import type { Shares } from './shares.js';

/**
 * A lease as epoch ms on the database's clock (claims write whole
 * milliseconds, so the number is exact and the same at every read), and
 * whether it is live by that clock: the machines' own clocks may differ
 * from it, and from each other, so liveness is never judged by them.
 */
const LEASE = (alias: string) => `(extract(epoch FROM ${alias}lease_until) * 1000)::float8 AS lease_until_ms, coalesce(${alias}lease_until > now(), false) AS lease_live`;

/** The jobs columns every read selects, `alias.` prefixed when given. */
export function jobColumns(alias = ''): string {
  const a = alias === '' ? '' : `${alias}.`;
  return [
    'id', 'session_id', 'share', 'rel_path', 'size', 'mtime_ms', 'sha256', 'md5', 'state', 'current', 'attempts', 'next_attempt_at', 'error',
    'duplicate_of', 'bytes_sent', 'upload_folder', 'owner', 'owner_pid', 'owner_host', 'mastering_requested', 'mastering_status', 'mastering_percent',
    'step_failures', 'mastering_plan', 'created_at', 'updated_at',
  ]
    .map((column) => `${a}${column}`)
    .concat(LEASE(a))
    .join(', ');
}

export const JOB_COLUMNS = jobColumns();

/** A jobs row as selected by jobColumns() (bigints already numbers, see TYPES). */
export interface JobRow {
  id: number;
  session_id: string;
  share: string;
  rel_path: string;
  size: number;
  mtime_ms: number;
  sha256: string | null;
  md5: string | null;
  state: State;
  current: boolean;
  attempts: number;
  next_attempt_at: number | null;
  error: string | null;
  duplicate_of: number | null;
  bytes_sent: number;
  upload_folder: string | null;
  owner: string | null;
  owner_pid: number | null;
  owner_host: string | null;
  lease_until_ms: number | null;
  lease_live: boolean;
  mastering_requested: boolean;
  mastering_status: string | null;
  mastering_percent: number | null;
  step_failures: number;
  mastering_plan: unknown;
  created_at: number;
  updated_at: number;
}

/** A row as the store works with it: the Job the rest of the program sees, and who holds it. */
export interface StoredJob {
  job: Job;
  owner: string | null;
  /** Its lease has not lapsed, by the database's clock. */
  leaseLive: boolean;
}

export function toStoredJob(row: JobRow, shares: Shares): StoredJob {
  const { folder, path } = shares.local({ share: row.share, relative: row.rel_path });
  return {
    job: {
      id: row.id,
      sessionId: row.session_id,
      folder,
      path,
      size: row.size,
      mtimeMs: row.mtime_ms,
      sha256: row.sha256,
      md5: row.md5,
      state: row.state,
      current: row.current,
      attempts: row.attempts,
      nextAttemptAt: row.next_attempt_at,
      error: row.error,
      duplicateOf: row.duplicate_of,
      bytesSent: row.bytes_sent,
      uploadFolder: row.upload_folder,
      ownerPid: row.owner_pid,
      ownerHost: row.owner_host,
      leaseUntil: row.lease_until_ms,
      masteringRequested: row.mastering_requested,
      masteringStatus: row.mastering_status,
      masteringPercent: row.mastering_percent,
      stepFailures: row.step_failures,
      masteringPlan: row.mastering_plan,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    },
    owner: row.owner,
    leaseLive: row.lease_live,
  };
}

export const FOLLOW_UP_COLUMNS = (alias = '') => {
  const a = alias === '' ? '' : `${alias}.`;
  return `${a}job_id, ${a}kind, ${a}plan, ${a}due_at, ${a}failures, ${a}error, ${a}owner_pid, ${LEASE(a)}`;
};

export interface FollowUpRow {
  job_id: number;
  kind: FollowUpKind;
  plan: unknown;
  due_at: number;
  failures: number;
  error: string | null;
  owner_pid: number | null;
  lease_until_ms: number | null;
  lease_live: boolean;
}

export const toFollowUp = (row: FollowUpRow): FollowUp => ({
  jobId: row.job_id,
  kind: row.kind,
  plan: row.plan,
  dueAt: row.due_at,
  failures: row.failures,
  error: row.error,
  ownerPid: row.owner_pid,
  leaseUntil: row.lease_until_ms,
});
