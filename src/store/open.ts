import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config, PostgresConfig } from '../config/index.js';
import type { TransitionEvent } from './job.js';
import { openDatabase, openExistingDatabase } from './db.js';
import { SqliteJobStore } from './jobs.js';
import { postgresPassword } from './postgres/password.js';
import { PostgresJobStore } from './postgres/store.js';
import type { JobStore } from './store.js';

/** A store and how to let go of it. */
export interface OpenStore {
  store: JobStore;
  /** Where the rows are, for the log: the SQLite file, or the PostgreSQL server and database (never the password). */
  location: string;
  /** Waits for the last commits to be durable, then closes. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /**
   * `daemon`: creates and migrates the database (the daemon, `upload FILE`);
   * `read` and `write`: the CLI's other commands, which need it to exist.
   */
  access: 'daemon' | 'read' | 'write';
  onTransition?: (event: TransitionEvent) => void;
  /** SQLite only: commits share their syncs (see GroupCommit). */
  groupCommit?: { windowMs: number; announceWithinMs: number };
}

/** The state store the configuration names: SQLite by default, or a PostgreSQL database several daemons share (state.postgres). */
export async function openStore(config: Config, options: OpenStoreOptions): Promise<OpenStore> {
  const { postgres } = config.state;
  if (postgres !== undefined) return openPostgres(config, postgres, options);
  const file = config.state.database;
  const db = options.access === 'daemon' ? openDatabase(file) : openExistingDatabase(file, { readonly: options.access === 'read' });
  const store = new SqliteJobStore(db, {
    ...(options.onTransition ? { onTransition: options.onTransition } : {}),
    ...(options.groupCommit ? { groupCommit: options.groupCommit } : {}),
  });
  return {
    store,
    location: file,
    close: async () => {
      try {
        await store.durable();
      } finally {
        db.close();
      }
    },
  };
}

async function openPostgres(config: Config, postgres: PostgresConfig, options: OpenStoreOptions): Promise<OpenStore> {
  const password = await postgresPassword(postgres.url);
  const store = await PostgresJobStore.open({
    url: postgres.url,
    ...(password === undefined ? {} : { password }),
    ...(postgres.ssl === undefined ? {} : { ssl: tlsOptions(postgres.ssl) }),
    holder: { host: hostname(), pid: process.pid },
    // The schema requires a share with state.postgres (configSchema).
    folders: config.folders.map((folder) => ({ path: folder.path, share: folder.share! })),
    ...(options.onTransition ? { onTransition: options.onTransition } : {}),
  });
  const url = new URL(postgres.url);
  return { store, location: `postgres://${url.host}${url.pathname}`, close: () => store.close() };
}

/** node-postgres takes the certificates themselves: the config names their files. A file that cannot be read fails the start, naming it. */
function tlsOptions(ssl: NonNullable<PostgresConfig['ssl']>) {
  if (typeof ssl === 'boolean') return ssl;
  const { ca, cert, key, ...rest } = ssl;
  const files = Object.entries({ ca, cert, key }).flatMap(([name, file]) => (file === undefined ? [] : [[name, readFileSync(file, 'utf8')]]));
  return { ...rest, ...Object.fromEntries(files) };
}
