import { basename } from 'node:path';
import { CryomixWatchError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { ShutdownAbort } from '../pipeline/aborts.js';
import { uploadOnce } from '../pipeline/oneShot.js';
import { openDatabase } from '../store/db.js';
import { JobStore } from '../store/jobs.js';
import { apiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';
import { relativeTime } from './format.js';

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
      process.stdout.write(`${basename(file)}: uploading…\n`);
      try {
        const job = await uploadOnce(file, { config, store, api, logger }, abort.signal, (waiting, delayMs) =>
          process.stdout.write(`${basename(file)}: ${waiting.error}; trying again ${relativeTime(Date.now() + delayMs)}\n`),
        );
        const outcome =
          job.state === 'done'
            ? job.duplicateOf !== null
              ? 'done (the same bytes were already uploaded from this folder)'
              : `done, session ${job.sessionId}, sha256 ${job.sha256}`
            : `${job.state}${job.error ? `: ${job.error}` : ''}${job.state === 'retrying' ? ' (the daemon will keep trying)' : ''}`;
        process.stdout.write(`${basename(file)}: ${outcome}\n`);
        if (job.state !== 'done') notDone.push(file);
      } catch (error) {
        process.stdout.write(`${basename(file)}: ${(error as Error).message}\n`);
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
