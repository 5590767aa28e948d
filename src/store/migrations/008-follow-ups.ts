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
 *
 * Moves that failed before this version were only noted on their `done`
 * row, and never tried again: they become follow-ups now, with no plan
 * (JSON null), which means the folder's `afterUpload` setting at the time
 * they run. The note goes; the follow-up carries the reason from now on.
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
      INSERT INTO follow_ups (job_id, kind, plan, due_at)
        SELECT id, 'after-upload', 'null', 0 FROM jobs WHERE current = 1 AND state = 'done' AND error LIKE 'uploaded, but the after-upload step failed:%';
      UPDATE jobs SET error = NULL WHERE current = 1 AND state = 'done' AND error LIKE 'uploaded, but the after-upload step failed:%';
    `);
  },
};
