import type { Migration } from './index.js';

/**
 * A burst of 1,000 files keeps 1,000 rows queued, and after every upload the
 * scheduler asks for the first few in id order: with (state,
 * next_attempt_at) only, SQLite sorted all of them each time. An index on
 * state alone is kept in (state, rowid) order. jobs_state had the same
 * columns as jobs_due and only cost writes. The startup scan and a removed
 * directory ask for the unfinished rows, a handful among years of finished
 * ones; the partial index names them (its condition must stay word for word
 * the one `JobStore.unfinished()` asks, or SQLite will not use it).
 */
export const queueOrder: Migration = {
  version: 6,
  up(db) {
    db.exec(`
      DROP INDEX jobs_state;
      CREATE INDEX jobs_state_order ON jobs(state);
      CREATE INDEX jobs_unfinished ON jobs(id) WHERE current = 1 AND state NOT IN ('done', 'failed', 'rejected', 'removed');
    `);
  },
};
