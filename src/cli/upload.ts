import { basename } from 'node:path';
import { CryomixWatchError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { ShutdownAbort } from '../pipeline/aborts.js';
import { NotUploadableError, uploadOnce } from '../pipeline/oneShot.js';
import type { Job } from '../store/job.js';
import { openDatabase } from '../store/db.js';
import { JobStore } from '../store/jobs.js';
import { apiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';
import { relativeTime } from './format.js';

function outcome(job: Job, startedAt: number): string {
  if (job.state === 'done' && job.updatedAt < startedAt) return `already uploaded earlier (session ${job.sessionId}), not sent again`;
  if (job.state === 'done' && job.duplicateOf !== null) return 'done: the same bytes were already uploaded from this folder, not sent again';
  if (job.state === 'done') return `done, session ${job.sessionId}, sha256 ${job.sha256}`;
  const detail = job.error ? `: ${job.error}` : '';
  return job.state === 'retrying' ? `not yet${detail} (the daemon will keep trying)` : `${job.state}${detail}`;
}

/**
 * `upload FILE…`: uploads now, in the foreground, recording everything in
 * the daemon's state DB so the daemon neither repeats nor loses the work.
 * Exits non-zero unless every file ended `done`.
 */
export async function uploadCommand(files: string[], options: GlobalOptions & { sandbox?: boolean }): Promise<void> {
  const target = await apiTarget(configFrom(options), Boolean(options.sandbox));
  const { config, api } = target;
  // Human lines go to stdout; the structured log only matters for warnings here.
  const logger = createLogger({ level: 'warn', format: 'pretty', secrets: [target.apiKey], destination: process.stderr });
  const db = openDatabase(config.state.database);
  const store = new JobStore(db);
  const abort = new AbortController();
  // A shutdown, not a failure: the file is parked as retrying for the daemon or the next run.
  const onSignal = () => abort.abort(new ShutdownAbort());
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const notDone: string[] = [];
  try {
    for (const file of files) {
      const name = basename(file);
      const startedAt = Date.now();
      try {
        const job = await uploadOnce(file, { config, store, api, logger }, abort.signal, (waiting, delayMs) =>
          process.stdout.write(`${name}: ${waiting.error}; trying again ${relativeTime(Date.now() + delayMs)}\n`),
        );
        process.stdout.write(`${name}: ${outcome(job, startedAt)}\n`);
        if (job.state !== 'done') notDone.push(file);
      } catch (error) {
        process.stdout.write(`${name}: ${error instanceof NotUploadableError ? error.reason : (error as Error).message}\n`);
        notDone.push(file);
      }
    }
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    db.close();
    await target.close();
  }
  if (notDone.length > 0) throw new CryomixWatchError('UPLOAD_INCOMPLETE', `${notDone.length} of ${files.length} file(s) not uploaded`);
}
