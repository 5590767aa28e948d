import type { Migration } from './index.js';

/**
 * Each upload asks whether its folder already holds the same bytes. By
 * sha256 that was a walk through every finished row; with years of history
 * it cost more than the upload's own commits.
 */
export const dedupe: Migration = {
  version: 5,
  up(db) {
    db.exec('CREATE INDEX jobs_folder_sha256 ON jobs(folder, sha256);');
  },
};
