import type { Migration } from './index.js';

/**
 * Work that is due once a file's bytes (or its masters) are safe: the
 * folder's after-upload move or delete, and the `mastering.onDone` hook.
 * A row is written in the same commit as the state that makes it due, and
 * deleted when the work has run, so a failure is tried again with backoff
 * and a crash in between runs it again: at least once. `plan` holds what to
 * do (JSON), so a config that changed meanwhile does not change it.
 *
 * `mastering_plan` on jobs: the settings, files and output folder a row is
 * mastered with, stored when mastering is asked for, so that any process
 * finishes any row, whoever started it (`upload --master`, a folder since
 * reconfigured).
 */
export const followUps: Migration = {
  version: 8,
  up(db) {
    db.exec(`
      CREATE TABLE follow_ups (
        job_id      INTEGER NOT NULL REFERENCES jobs(id),
        kind        TEXT    NOT NULL,
        plan        TEXT    NOT NULL,
        due_at      INTEGER NOT NULL,
        failures    INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        owner_pid   INTEGER,
        lease_until INTEGER,
        PRIMARY KEY (job_id, kind)
      );
      CREATE INDEX follow_ups_due ON follow_ups(due_at);
      ALTER TABLE jobs ADD COLUMN mastering_plan TEXT;
    `);
  },
};
