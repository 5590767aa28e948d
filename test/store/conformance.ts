import { afterEach, describe } from 'vitest';
import type { TransitionEvent } from '../../src/store/job.js';
import type { JobStore } from '../../src/store/store.js';
import { followUpTests } from './conformance/followUps.js';
import { readTests } from './conformance/reads.js';
import { stepTests } from './conformance/steps.js';
import { transitionTests } from './conformance/transitions.js';
import { uploadTests } from './conformance/uploads.js';
import { versionTests } from './conformance/versions.js';

export { rowIn, VERSION, type RowOptions } from './conformance/rows.js';

/**
 * The behaviour every JobStore must have, written against the interface
 * alone, so that each implementation runs the same suite (rclone's fstests,
 * restic's Suite): `describeJobStore(name, open)` in the implementation's
 * own test file.
 *
 * Holders: `store` and `other` share one database as two live holders (two
 * processes on one machine, or two machines on one server). Leases are timed
 * by the store (a database may use its own clock), so lease tests open
 * stores with a short lease and really wait for it to lapse.
 */

/** The folders every row of the suite is in; an implementation that names folders otherwise (a share each) maps these. */
export const CONFORMANCE_FOLDERS = ['/srv/in', '/srv/other'] as const;
export type ConformanceFolder = (typeof CONFORMANCE_FOLDERS)[number];

export interface OpenedStore {
  /** This holder's store; its transitions are announced into `events`. */
  store: JobStore;
  /** Another live holder of the same database: its fresh claims are not `store`'s to take. */
  other: JobStore;
  /** What `store`'s onTransition listener heard, in order. */
  events: TransitionEvent[];
  /** Closes `store` and `other`, then opens the same database again as `store`'s holder: what was committed must be there. */
  reopen(): Promise<JobStore>;
  /** Closes every store this opened (the reopened one too). */
  close(): Promise<void>;
}

/** Opens a fresh, empty database for one test; `leaseMs` (default LEASE_MS) is every claim's lease, for both holders. */
export type OpenStore = (options?: { leaseMs?: number }) => Promise<OpenedStore>;

/** What each part of the suite (conformance/*.ts) registers its tests with. */
export interface Suite {
  /** A fresh store pair for this test, closed after it; `leaseMs` for the tests that wait for a lease to lapse. */
  open(leaseMs?: number): Promise<OpenedStore>;
}

export function describeJobStore(name: string, openStore: OpenStore): void {
  describe(`JobStore conformance: ${name}`, () => {
    const opened: OpenedStore[] = [];
    afterEach(async () => {
      for (const one of opened.splice(0)) await one.close();
    });
    const suite: Suite = {
      async open(leaseMs) {
        const one = await openStore(leaseMs === undefined ? {} : { leaseMs });
        opened.push(one);
        return one;
      },
    };

    versionTests(suite);
    transitionTests(suite);
    uploadTests(suite);
    stepTests(suite);
    followUpTests(suite);
    readTests(suite);
  });
}
