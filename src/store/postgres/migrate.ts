import type { Connection } from './connection.js';
import { PostgresFutureSchemaError } from './errors.js';
import { advisoryLock } from './locks.js';
import { POSTGRES_MIGRATIONS, type PostgresMigration } from './migrations/index.js';

/**
 * Brings the schema to the newest version in one transaction, so a failure
 * midway leaves the previous version intact. Daemons starting at once take
 * turns on a transaction-scoped advisory lock, taken before anything is
 * read: the second finds the first's versions recorded and runs nothing.
 * A database from a newer cryomix-watch is refused.
 */
export async function migrate(connection: Connection, migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS): Promise<void> {
  const latest = migrations.at(-1)?.version ?? 0;
  await connection.transaction(async (query) => {
    await query(advisoryLock('migrations'), ['schema']);
    await query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    if (current > latest) throw new PostgresFutureSchemaError(connection.target, current, latest);
    for (const migration of migrations.filter((m) => m.version > current)) {
      await query(migration.sql);
      await query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
    }
  });
}
