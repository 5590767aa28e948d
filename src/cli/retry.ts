import { resolve } from 'node:path';
import { CryomixWatchError } from '../errors.js';
import { rearm } from '../pipeline/rearm.js';
import type { Job } from '../store/job.js';
import { configFrom, withStore, type GlobalOptions } from './context.js';

/**
 * Re-arms failed files at the step that failed, with the same Session-Id;
 * the running daemon picks them up within seconds (it polls the DB).
 */
export async function retryCommand(paths: string[], options: GlobalOptions & { failed?: boolean }): Promise<void> {
  if (!options.failed && paths.length === 0) {
    throw new CryomixWatchError('USAGE', 'retry needs --failed or one or more file paths');
  }
  const problems: string[] = [];
  const rearmed = await withStore(configFrom(options), 'write', async (store) => {
    const failed = new Map((options.failed ? await store.list('failed') : []).map((job) => [job.id, job]));
    for (const path of paths.map((p) => resolve(p))) {
      const job = await store.current(path);
      if (!job) problems.push(`${path}: not known to cryomix-watch (is it inside a watched folder?)`);
      else if (job.state === 'failed') failed.set(job.id, job);
      else if (job.state === 'rejected') problems.push(`${path}: rejected (${job.error}); fix the file and save it again, it will be looked at anew`);
      else problems.push(`${path}: ${job.state}, nothing to retry`);
    }
    const rearmedJobs: Job[] = [];
    for (const job of failed.values()) if (await rearm(store, job)) rearmedJobs.push(job);
    return rearmedJobs;
  });
  for (const job of rearmed) process.stdout.write(`re-armed ${job.path}\n`);
  if (rearmed.length === 0 && problems.length === 0) process.stdout.write('no failed files\n');
  if (problems.length > 0) throw new CryomixWatchError('RETRY_INCOMPLETE', problems.join('\n'));
}
