import type { FollowUp, FollowUpKind, Job } from '../store/job.js';
import type { JobStore } from '../store/store.js';
import type { State } from '../store/states.js';
import { relativeTime } from './format.js';

/** The stable `list --json` row (SPEC): add fields, never rename or remove them. */
export interface JobView {
  path: string;
  state: State;
  sessionId: string;
  size: number;
  sha256: string | null;
  attempts: number;
  error: string | null;
  bytesSent: number;
  nextAttemptAt: string | null;
  duplicateOf: string | null;
  /** While mastering: the API's percentage. */
  masteringPercent: number | null;
  updatedAt: string;
  /** Work still due on the file: its after-upload move or delete, its onDone hook. */
  followUps: FollowUpView[];
  /** With a queue several machines share (state.postgres): the machine that holds, or last held, the file's upload or mastering; null before any did. */
  host: string | null;
}

export interface FollowUpView {
  kind: FollowUpKind;
  /** Why its last run failed ("move pending: EACCES …"); null before a failure. */
  error: string | null;
  /** When it runs (again). */
  dueAt: string;
}

export async function jobView(job: Job, store: JobStore): Promise<JobView> {
  return {
    path: job.path,
    state: job.state,
    sessionId: job.sessionId,
    size: job.size,
    sha256: job.sha256,
    attempts: job.attempts,
    error: job.error,
    bytesSent: job.bytesSent,
    nextAttemptAt: job.state === 'retrying' && job.nextAttemptAt !== null ? new Date(job.nextAttemptAt).toISOString() : null,
    duplicateOf: job.duplicateOf === null ? null : (await store.get(job.duplicateOf)).path,
    masteringPercent: job.masteringPercent,
    updatedAt: new Date(job.updatedAt).toISOString(),
    followUps: (await store.followUps(job.id)).map(followUpView),
    host: job.ownerHost,
  };
}

export function followUpView({ kind, error, dueAt }: Pick<FollowUp, 'kind' | 'error' | 'dueAt'>): FollowUpView {
  return { kind, error, dueAt: new Date(dueAt).toISOString() };
}

/** A follow-up that failed, with its next try: "move pending: EACCES …, next try in 2 min". */
export function followUpNote({ error, dueAt }: Pick<FollowUpView, 'error' | 'dueAt'>, now = Date.now()): string | undefined {
  return error === null ? undefined : `${error}, next try ${relativeTime(Date.parse(dueAt), now)}`;
}

/** How far the running step is, 0-100: the upload's bytes sent, or the API's mastering percentage; undefined between steps. */
export function jobPercent(row: JobView): number | undefined {
  if (row.state === 'uploading' && row.size > 0) return Math.floor((100 * row.bytesSent) / row.size);
  if (row.state === 'mastering') return row.masteringPercent ?? 0;
  return undefined;
}

/** What is happening to the file, in one phrase: progress, the next try, the reason it stopped. */
export function jobDetail(row: JobView, now = Date.now()): string {
  return [stepDetail(row, now), ...row.followUps.map((followUp) => followUpNote(followUp, now))].filter((part) => part).join('; ');
}

function stepDetail(row: JobView, now: number): string {
  const percent = jobPercent(row);
  if (row.state === 'uploading' && percent !== undefined) return `${percent}% sent`;
  if (row.state === 'retrying' && row.nextAttemptAt) return `next try ${relativeTime(Date.parse(row.nextAttemptAt), now)}: ${row.error ?? ''}`;
  if (row.state === 'mastering') return `mastering ${percent}%${row.error ? ` (${row.error})` : ''}`;
  if (row.duplicateOf) return `same bytes as ${row.duplicateOf}, not sent again`;
  return row.error ?? '';
}
