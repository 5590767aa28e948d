import type { Migration } from './index.js';

/**
 * One row per file version. `current` marks the newest version of a path, so
 * history stays readable while each path has exactly one live row. The
 * Session-Id is chosen when the row is created, which is before any API call.
 */
export const jobs: Migration = {
  version: 1,
  up(db) {
    db.exec(`
      CREATE TABLE jobs (
        id              INTEGER PRIMARY KEY,
        session_id      TEXT    NOT NULL UNIQUE,
        folder          TEXT    NOT NULL,
        path            TEXT    NOT NULL,
        size            INTEGER NOT NULL,
        mtime_ms        REAL    NOT NULL,
        sha256          TEXT,
        md5             TEXT,
        state           TEXT    NOT NULL,
        current         INTEGER NOT NULL DEFAULT 1,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        error           TEXT,
        duplicate_of    INTEGER REFERENCES jobs(id),
        bytes_sent      INTEGER NOT NULL DEFAULT 0,
        upload_folder   TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX jobs_current_path ON jobs(path) WHERE current = 1;
      CREATE INDEX jobs_state ON jobs(state, next_attempt_at);
      CREATE INDEX jobs_folder_size ON jobs(folder, size);
      CREATE TABLE daemon (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `);
  },
};
