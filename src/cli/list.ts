import type { State } from '../store/states.js';
import { formatBytes, table } from '../report/format.js';
import { jobDetail, jobView, type JobView } from '../report/jobView.js';
import { configFrom, withStore, type GlobalOptions } from './context.js';

/** The rows `list` shows, newest first: every live version, or those in `state`. */
export function listRows(database: string, state?: State): JobView[] {
  return withStore(database, 'read', (store) => store.list(state).map((job) => jobView(job, store)));
}

export function listCommand(options: GlobalOptions & { state?: string; json?: boolean }): void {
  const state = options.state as State | undefined;
  const rows = listRows(configFrom(options).state.database, state);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write(state ? `no files are ${state}\n` : 'no files seen yet\n');
    return;
  }
  const cells = rows.map((row) => [row.state, row.path, formatBytes(row.size), String(row.attempts), row.sessionId, jobDetail(row)]);
  process.stdout.write(`${table(['STATE', 'FILE', 'SIZE', 'TRIES', 'SESSION-ID', 'DETAIL'], cells)}\n`);
}
