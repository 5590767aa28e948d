import type { Migration } from './index.js';

/**
 * Who is uploading a row, and until when that claim holds. `upload FILE`
 * and the daemon share the DB: a starting daemon must tell a live upload in
 * another process from one a crash left behind.
 */
export const uploadLease: Migration = {
  version: 2,
  up(db) {
    db.exec(`
      ALTER TABLE jobs ADD COLUMN owner_pid INTEGER;
      ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
    `);
  },
};
