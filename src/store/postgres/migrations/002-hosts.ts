import type { PostgresMigration } from './index.js';

/**
 * Each daemon's heartbeat, for `status`: which machines share the queue and
 * when each was last heard, on the database's clock. One row per holder (a
 * daemon's run); rows of runs long gone are left out when read.
 */
export const hosts: PostgresMigration = {
  version: 2,
  sql: `
    CREATE TABLE hosts (
      owner text PRIMARY KEY,
      host text NOT NULL,
      pid integer NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now(),
      last_seen timestamptz NOT NULL DEFAULT now()
    );
  `,
};
