import { defaultConfigPath, loadConfig, type Config } from '../config/index.js';
import { openExistingDatabase } from '../store/db.js';
import { JobStore } from '../store/jobs.js';

export interface GlobalOptions {
  config?: string;
}

export function configFrom(options: GlobalOptions): Config {
  return loadConfig(options.config ?? defaultConfigPath());
}

/**
 * Runs `work` against the same state DB the daemon uses. WAL lets these
 * commands read and write while the daemon runs; the busy timeout covers its
 * short write transactions.
 */
export function withStore<T>(database: string, access: 'read' | 'write', work: (store: JobStore) => T): T {
  const db = openExistingDatabase(database, { readonly: access === 'read' });
  try {
    return work(new JobStore(db));
  } finally {
    db.close();
  }
}
