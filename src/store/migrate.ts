import type Database from 'better-sqlite3';
import { CryomixWatchError } from '../errors.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export class FutureSchemaError extends CryomixWatchError {
  constructor(file: string, found: number, known: number) {
    super(
      'DB_FROM_FUTURE',
      `${file} was written by a newer cryomix-watch (schema ${found}, this version knows ${known}); upgrade cryomix-watch or point state.database elsewhere`,
    );
  }
}

/**
 * Brings the schema to the newest version in one synchronous transaction, so
 * a crash mid-migration leaves the previous version intact.
 */
export function migrate(db: Database.Database, file: string, migrations: readonly Migration[] = MIGRATIONS): void {
  const latest = migrations.at(-1)?.version ?? 0;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > latest) throw new FutureSchemaError(file, current, latest);
  const pending = migrations.filter((m) => m.version > current);
  if (pending.length === 0) return;
  db.transaction(() => {
    for (const migration of pending) migration.up(db);
    db.pragma(`user_version = ${latest}`);
  })();
}

export class OldSchemaError extends CryomixWatchError {
  constructor(file: string, found: number, known: number) {
    super('DB_OLD_SCHEMA', `${file} has schema ${found}, this version uses ${known}: start the daemon once to upgrade it`);
  }
}

/** For readers that must not migrate: the schema must be exactly the one this code knows. */
export function assertSchemaCurrent(db: Database.Database, file: string, migrations: readonly Migration[] = MIGRATIONS): void {
  const latest = migrations.at(-1)?.version ?? 0;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > latest) throw new FutureSchemaError(file, current, latest);
  if (current < latest) throw new OldSchemaError(file, current, latest);
}
