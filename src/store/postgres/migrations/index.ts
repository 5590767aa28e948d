import { schema } from './001-schema.js';
import { hosts } from './002-hosts.js';

/** Append-only: never edit a shipped migration, add the next number instead. */
export interface PostgresMigration {
  version: number;
  /** Runs inside the migrating transaction; may hold several statements, and no parameters. */
  sql: string;
}

export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [schema, hosts];
