import { redactSignedUrls } from '../net/redact.js';
import type { TransitionPatch } from './job.js';

/**
 * Each patch field's column, the same in every store. The claim columns
 * (owner, lease) are not among them: only a store's own claims write them,
 * on the clock that times its leases.
 */
const PATCH_COLUMNS: Readonly<Record<keyof TransitionPatch, string>> = {
  error: 'error',
  nextAttemptAt: 'next_attempt_at',
  sha256: 'sha256',
  headSha256: 'head_sha256',
  md5: 'md5',
  attempts: 'attempts',
  duplicateOf: 'duplicate_of',
  bytesSent: 'bytes_sent',
  uploadFolder: 'upload_folder',
  masteringRequested: 'mastering_requested',
  masteringStatus: 'mastering_status',
  masteringPercent: 'mastering_percent',
  stepFailures: 'step_failures',
  masteringPlan: 'mastering_plan',
};

/**
 * The columns a patch sets, each with the value to store: errors quote
 * storage's and the API's words, and a signed URL among them must not be
 * kept; a mastering plan is stored as JSON; a time is whole milliseconds.
 * Fields left undefined are left alone.
 */
export function patchColumns(patch: TransitionPatch): [column: string, value: unknown][] {
  return (Object.entries(patch) as [keyof TransitionPatch, unknown][])
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => [PATCH_COLUMNS[key], storedValue(key, value)]);
}

function storedValue(key: keyof TransitionPatch, value: unknown): unknown {
  if (key === 'error' && typeof value === 'string') return redactSignedUrls(value);
  if (key === 'masteringPlan') return JSON.stringify(value);
  // Times are whole milliseconds, as the columns hold them (PostgreSQL's bigint refuses a fraction).
  if (key === 'nextAttemptAt' && typeof value === 'number') return Math.round(value);
  return value;
}
