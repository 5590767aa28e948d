import type { Config } from '../config/index.js';
import type { State } from '../store/states.js';
import { formatBytes, table } from '../report/format.js';
import { jobDetail, jobView, type JobView } from '../report/jobView.js';
import { configFrom, withStore, type GlobalOptions } from './context.js';

/** The rows `list` shows, newest first: every live version, or those in `state`. */
export function listRows(config: Config, state?: State): Promise<JobView[]> {
  return withStore(config, 'read', async (store) => Promise.all((await store.list(state)).map((job) => jobView(job, store))));
}

export async function listCommand(options: GlobalOptions & { state?: string; json?: boolean }): Promise<void> {
  const state = options.state as State | undefined;
  const rows = await listRows(configFrom(options), state);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write(state ? `no files are ${state}\n` : 'no files seen yet\n');
    return;
  }
  // Only a queue several machines share has hosts to tell apart.
  const hosts = rows.some((row) => row.host !== null);
  const cells = rows.map((row) => [row.state, row.path, formatBytes(row.size), String(row.attempts), row.sessionId, ...(hosts ? [row.host ?? ''] : []), jobDetail(row)]);
  process.stdout.write(`${table(['STATE', 'FILE', 'SIZE', 'TRIES', 'SESSION-ID', ...(hosts ? ['HOST'] : []), 'DETAIL'], cells)}\n`);
}
