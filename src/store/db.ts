import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CryomixWatchError } from '../errors.js';
import { assertSchemaCurrent, migrate } from './migrate.js';

export class DatabaseOpenError extends CryomixWatchError {
  constructor(file: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('DB_OPEN', `cannot open the state database ${file}: ${reason} (check state.database and that the directory is writable)`, { cause });
  }
}

/**
 * better-sqlite3 builds SQLite with a 16 MB page cache per connection, which
 * a long-running daemon fills as its DB grows (about 8.5 MB per 10,000
 * files) and never gives back: memory that grows with history for no gain,
 * since each run reads a row a few times at most and the OS caches the file
 * anyway. A negative cache_size is in KiB; 2 MB is SQLite's own default.
 */
const PAGE_CACHE_KIB = -2000;

/**
 * Opens (creating if needed) the state database. WAL lets `status` and `list`
 * read while the daemon writes; synchronous=FULL makes every commit durable
 * before we act on it, which the Session-Id guarantee depends on (the
 * daemon's JobStore turns that into group commit: see GroupCommit). The
 * directory is created 0700 and the file 0600: it names the studio's files.
 */
export function openDatabase(file: string): Database.Database {
  let db: Database.Database;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    db.pragma(`cache_size = ${PAGE_CACHE_KIB}`);
  } catch (error) {
    throw new DatabaseOpenError(file, error);
  }
  migrate(db, file);
  return db;
}

export class NoStateError extends CryomixWatchError {
  constructor(file: string) {
    super('DB_MISSING', `no state database at ${file} yet: the daemon has not run with this configuration (see state.database)`);
  }
}

/**
 * Opens the daemon's DB for `status`, `list` and `retry`. It never creates
 * the file (run as root before the first start, that would leave a file the
 * service user cannot open) and never migrates it (the daemon's version owns
 * the schema).
 */
export function openExistingDatabase(file: string, options: { readonly: boolean }): Database.Database {
  if (!existsSync(file)) throw new NoStateError(file);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: options.readonly, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    // A re-armed file must survive a power cut as surely as the daemon's own commits.
    if (!options.readonly) db.pragma('synchronous = FULL');
  } catch (error) {
    throw new DatabaseOpenError(file, error);
  }
  try {
    assertSchemaCurrent(db, file);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

