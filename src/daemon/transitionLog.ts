import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { TransitionEvent } from '../store/job.js';

/**
 * One log event per state change: what a person or a log search needs to
 * follow one file (path, Session-Id, bytes, time spent in the previous state,
 * the reason when there is one).
 */
export function logTransitions(logger: Logger): (event: TransitionEvent) => void {
  return ({ job, from, durationMs }) => {
    const fields = {
      event: 'transition',
      file: job.path,
      sessionId: job.sessionId,
      from,
      to: job.state,
      bytes: job.size,
      durationMs,
      attempts: job.attempts,
      ...(job.error ? { reason: job.error } : {}),
      ...(job.state === 'retrying' && job.nextAttemptAt ? { nextAttemptAt: new Date(job.nextAttemptAt).toISOString() } : {}),
      ...(job.duplicateOf ? { duplicateOf: job.duplicateOf } : {}),
    };
    const name = basename(job.path);
    const message = from === null ? `${name}: new file, waiting for it to settle` : `${name}: ${from} → ${job.state}${job.error ? ` (${job.error})` : ''}`;
    const level = job.state === 'failed' || job.state === 'rejected' ? 'warn' : 'info';
    logger[level](fields, message);
  };
}
