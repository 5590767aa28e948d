import Database from 'better-sqlite3';
import pg from 'pg';
import { CryomixWatchError } from '../errors.js';
import { StoreSyncError } from './groupCommit.js';

/**
 * The state database cannot be reached right now (a shared PostgreSQL that
 * is down, restarting or cut off). Nothing was committed by the call that
 * failed; the work waits and is done once the database answers again.
 * SQLite, on this machine's own disk, never throws it.
 */
export class StoreUnavailableError extends CryomixWatchError {}

export function isStoreUnavailable(error: unknown): error is StoreUnavailableError {
  return error instanceof StoreUnavailableError;
}

/**
 * A failing state DB (disk full, read-only, corrupt, a statement the
 * database refused) means no guarantee can be kept: the daemon must stop
 * taking work and exit non-zero, never log and carry on.
 */
export function isStoreFailure(error: unknown): boolean {
  return error instanceof Database.SqliteError || error instanceof StoreSyncError || error instanceof pg.DatabaseError;
}

/**
 * The error is the state database's, not the file's: a catch that files
 * what went wrong with a file lets it go up, to stop the daemon or, for a
 * database that cannot be reached, to hold its work (see Pipeline).
 */
export function isStoreError(error: unknown): boolean {
  return isStoreFailure(error) || isStoreUnavailable(error);
}
