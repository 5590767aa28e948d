import { basename, dirname } from 'node:path';
import { CryomixWatchError } from '../errors.js';
import { parseRate } from '../config/rate.js';
import type { ByteRate } from '../transfer/throttle.js';
import { createLogger } from '../log/logger.js';
import { ShutdownAbort } from '../pipeline/aborts.js';
import { mastersDirectoryFor, storedPlan, type MasteringPlan } from '../pipeline/master.js';
import { NotUploadableError, oneShotPlan, uploadOnce } from '../pipeline/oneShot.js';
import type { UploadParts } from '../pipeline/uploadContext.js';
import type { Job } from '../store/job.js';
import { openStore } from '../store/open.js';
import type { JobStore } from '../store/store.js';
import { apiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';
import { relativeTime } from '../report/format.js';
import { progressLine } from './progress.js';

export interface UploadOptions extends GlobalOptions {
  sandbox?: boolean;
  /** Master each file once uploaded, and bring the masters back. */
  master?: boolean;
  /** Where masters go (`<out>/<mix's path in its folder>/`); default: the folder's outputDir, else the current directory. */
  out?: string;
  /** `--limit`: the upload cap for this command, as written ("4 MB/s", "off"). */
  limit?: string;
}

/** `--limit` as a cap, or undefined when not given; a rate that does not parse is a usage error naming the forms. */
function limitOption(text: string | undefined): ByteRate | undefined {
  if (text === undefined) return undefined;
  const parsed = parseRate(text);
  if (!parsed.ok) throw new CryomixWatchError('USAGE', `--limit ${JSON.stringify(text)}: ${parsed.error}`);
  return parsed.bytesPerSecond;
}

function outcome(job: Job, startedAt: number): string {
  if (job.state === 'done' && job.updatedAt < startedAt) return `already uploaded earlier (session ${job.sessionId}), not sent again`;
  if (job.duplicateOf !== null && ['done', 'mastering', 'downloading'].includes(job.state)) {
    const masters = job.state === 'done' ? '' : '; its folder asks for masters, which the daemon fetches (or add --master to wait for them here)';
    return `done: the same bytes were already uploaded from this folder, not sent again${masters}`;
  }
  if (job.state === 'done') return `done, session ${job.sessionId}, sha256 ${job.sha256}`;
  if (job.state === 'mastering' || job.state === 'downloading') {
    return `uploaded, session ${job.sessionId}; its folder asks for masters, which the daemon fetches (or add --master to wait for them here)`;
  }
  const detail = job.error ? `: ${job.error}` : '';
  return job.state === 'retrying' ? `not yet${detail} (the daemon will keep trying)` : `${job.state}${detail}`;
}

/** The masters of a done job: where they are, or undefined when it was never mastered. */
async function mastersOf(store: JobStore, jobId: number): Promise<string | undefined> {
  const [first] = await store.downloads(jobId);
  return first && dirname(first.path);
}

/** Who finishes a job this command leaves unfinished: the plan is on the row (an earlier run's, once its mastering started), so the daemon can. */
function leftOver(plan: MasteringPlan, job: Job): string {
  return `the daemon will finish it (masters to ${mastersDirectoryFor(storedPlan(job) ?? plan, job)}), or run this command again (same Session-Id; nothing is sent or started twice)`;
}

/** The last line about a file `upload --master` worked on, and whether it ended with its masters. */
async function masteredOutcome(job: Job, store: JobStore, startedAt: number, plan: MasteringPlan, interrupted: boolean): Promise<{ text: string; ok: boolean }> {
  const detail = job.error ? `: ${job.error}` : '';
  if (job.state === 'done') {
    const masters = await mastersOf(store, job.id);
    if (masters === undefined) return { text: `done without masters${detail}`, ok: false };
    const same = job.duplicateOf === null ? '' : `the same bytes as ${(await store.get(job.duplicateOf)).path}, not sent again; `;
    return job.updatedAt < startedAt
      ? { text: `already mastered earlier (session ${job.sessionId}): masters in ${masters}; nothing started again`, ok: true }
      : { text: `${same}done, masters in ${masters}`, ok: true };
  }
  if (job.state === 'failed') return { text: `failed${detail}`, ok: false };
  const where = job.state === 'mastering' || job.state === 'downloading' ? `while ${job.state}` : 'during the upload';
  if (interrupted) return { text: `interrupted ${where}; ${leftOver(plan, job)}`, ok: false };
  if (['retrying', 'mastering', 'downloading'].includes(job.state)) return { text: `not yet${detail}; ${leftOver(plan, job)}`, ok: false };
  return { text: `${job.state}${detail}`, ok: false };
}

/** `upload FILE --master`: one file through upload, mastering and download, with its progress on one line. */
async function uploadAndMaster(file: string, parts: UploadParts, signal: AbortSignal, out: string | undefined, limit: ByteRate | undefined): Promise<boolean> {
  const name = basename(file);
  const progress = progressLine(name);
  if (signal.aborted) {
    progress.finish('not started: interrupted');
    return false;
  }
  const startedAt = Date.now();
  try {
    const plan = oneShotPlan(parts.config, file, out);
    const job = await uploadOnce(file, parts, signal, {
      master: plan,
      ...(limit === undefined ? {} : { limit }),
      onWait: (waiting, delayMs) => progress.note(`${waiting.error}; trying again ${relativeTime(Date.now() + delayMs)}`),
      onProgress: (row) => progress.update(row),
      onHeld: (row) => progress.note(`another cryomix-watch process (pid ${row.ownerPid}) is working on it; following its progress`),
    });
    const { text, ok } = await masteredOutcome(job, parts.store, startedAt, plan, signal.aborted);
    progress.finish(text);
    return ok;
  } catch (error) {
    progress.finish(error instanceof NotUploadableError ? error.reason : (error as Error).message);
    return false;
  }
}

/**
 * `upload FILE…`: uploads now, in the foreground, recording everything in
 * the daemon's state DB so the daemon neither repeats nor loses the work.
 * With `--master`, also masters each file through the daemon's own steps
 * and brings the masters back. Exits non-zero unless every file ended
 * `done` (with its masters, for `--master`).
 */
export async function uploadCommand(files: string[], options: UploadOptions): Promise<void> {
  if (options.out !== undefined && !options.master) throw new CryomixWatchError('USAGE', '--out is where masters go: it needs --master');
  const limit = limitOption(options.limit);
  const target = await apiTarget(configFrom(options), Boolean(options.sandbox));
  const { config, api } = target;
  // Human lines go to stdout; the structured log only matters for warnings here.
  const logger = createLogger({ level: 'warn', format: 'pretty', secrets: [target.apiKey], destination: process.stderr });
  const opened = await openStore(config, { access: 'daemon' });
  const { store } = opened;
  const abort = new AbortController();
  // A shutdown, not a failure: the file is parked as retrying for the daemon or the next run.
  const onSignal = () => abort.abort(new ShutdownAbort());
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const notDone: string[] = [];
  try {
    for (const file of files) {
      if (options.master) {
        if (!(await uploadAndMaster(file, { config, store, api, logger }, abort.signal, options.out, limit))) notDone.push(file);
        continue;
      }
      const name = basename(file);
      const startedAt = Date.now();
      try {
        const job = await uploadOnce(file, { config, store, api, logger }, abort.signal, {
          ...(limit === undefined ? {} : { limit }),
          onWait: (waiting, delayMs) => process.stdout.write(`${name}: ${waiting.error}; trying again ${relativeTime(Date.now() + delayMs)}\n`),
          onHeld: (row) => process.stdout.write(`${name}: another cryomix-watch process (pid ${row.ownerPid}) is uploading it; following it\n`),
        });
        process.stdout.write(`${name}: ${outcome(job, startedAt)}\n`);
        // Without --master the upload is the whole task; mastering a folder asks for continues in the daemon.
        if (!['done', 'mastering', 'downloading'].includes(job.state)) notDone.push(file);
      } catch (error) {
        process.stdout.write(`${name}: ${error instanceof NotUploadableError ? error.reason : (error as Error).message}\n`);
        notDone.push(file);
      }
    }
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    await opened.close();
    await target.close();
  }
  if (notDone.length > 0) {
    throw new CryomixWatchError('UPLOAD_INCOMPLETE', `${notDone.length} of ${files.length} file(s) not ${options.master ? 'mastered' : 'uploaded'}`);
  }
}
