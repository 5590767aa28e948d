import type { Migration } from './index.js';

/**
 * The status page and the systemd STATUS line ask for the files changed
 * most recently and for today's finished ones; on a 100k-row history both
 * would otherwise sort or scan the whole table every few seconds.
 */
export const recent: Migration = {
  version: 4,
  up(db) {
    db.exec('CREATE INDEX jobs_recent ON jobs(updated_at) WHERE current = 1;');
  },
};
