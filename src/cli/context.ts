import { defaultConfigPath, loadConfig, type Config } from '../config/index.js';
import { openStore } from '../store/open.js';
import type { JobStore } from '../store/store.js';

export interface GlobalOptions {
  config?: string;
}

export function configFrom(options: GlobalOptions): Config {
  return loadConfig(options.config ?? defaultConfigPath());
}

/**
 * Runs `work` against the same state the daemon uses. SQLite's WAL lets
 * these commands read and write while the daemon runs (its busy timeout
 * covers the daemon's short write transactions); PostgreSQL is shared anyway.
 */
export async function withStore<T>(config: Config, access: 'read' | 'write', work: (store: JobStore, location: string) => Promise<T>): Promise<T> {
  const opened = await openStore(config, { access });
  try {
    return await work(opened.store, opened.location);
  } finally {
    await opened.close();
  }
}
