import type { Migration } from './index.js';

/**
 * Mastering after upload. `mastering_requested` is committed before
 * POST /api/mastering, so a crash between the call and its answer is
 * noticed and the API asked before any second start. Each downloaded result
 * gets a row, so a restart fetches only what is missing.
 */
export const mastering: Migration = {
  version: 3,
  up(db) {
    db.exec(`
      ALTER TABLE jobs ADD COLUMN mastering_requested INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN mastering_status TEXT;
      ALTER TABLE jobs ADD COLUMN mastering_percent INTEGER;
      ALTER TABLE jobs ADD COLUMN step_failures INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE downloads (
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        name   TEXT    NOT NULL,
        path   TEXT    NOT NULL,
        bytes  INTEGER NOT NULL,
        sha256 TEXT    NOT NULL,
        PRIMARY KEY (job_id, name)
      );
      CREATE INDEX jobs_due ON jobs(state, next_attempt_at);
    `);
  },
};
