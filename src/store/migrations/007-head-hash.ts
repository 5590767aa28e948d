import type { Migration } from './index.js';

/**
 * A file the size of an earlier upload used to be hashed whole before its
 * own upload, to rule out sending the same bytes twice: a second read of
 * every file in a batch of equal-length renders. The SHA-256 of the first
 * 64 KiB sent, kept per upload, rules most of them out for a 64 KiB read.
 * Rows uploaded before this have none and still mean a full hash. The index
 * replaces jobs_folder_size, whose columns it begins with.
 */
export const headHash: Migration = {
  version: 7,
  up(db) {
    db.exec(`
      ALTER TABLE jobs ADD COLUMN head_sha256 TEXT;
      CREATE INDEX jobs_folder_size_head ON jobs(folder, size, head_sha256);
      DROP INDEX jobs_folder_size;
    `);
  },
};
