import type { Migration } from './index.js';

/** What `head_sha256` holds for an upload stored before migration 007, whose beginning nobody recorded. */
export const UNRECORDED_HEAD = 'unrecorded';

/**
 * Such an upload may hold the same bytes as any later file of its size, so
 * the dedupe check looked for stored rows whose head was NULL as well. But
 * NULL is also every row not yet uploaded: 10,000 equal-length files (stems,
 * a batch of renders) made each check walk the thousands waiting behind it.
 * A value of their own makes it two lookups in jobs_folder_size_head.
 */
export const unrecordedHeads: Migration = {
  version: 9,
  up(db) {
    db.prepare(
      `UPDATE jobs SET head_sha256 = ?
       WHERE head_sha256 IS NULL AND sha256 IS NOT NULL AND state IN ('uploaded', 'mastering', 'downloading', 'done')`,
    ).run(UNRECORDED_HEAD);
  },
};
