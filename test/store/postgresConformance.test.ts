import { describe } from 'vitest';
import { PostgresJobStore } from '../../src/store/postgres/store.js';
import type { TransitionEvent } from '../../src/store/job.js';
import { postgresUnavailable, usePostgres } from '../helpers/postgres.js';
import { CONFORMANCE_FOLDERS, describeJobStore } from './conformance.js';

const unavailable = postgresUnavailable();
if (unavailable !== undefined) console.log(`PostgreSQL store conformance: ${unavailable}`);

/** The suite's folders, each its own share. */
const FOLDERS = CONFORMANCE_FOLDERS.map((path) => ({ path, share: path.slice(path.lastIndexOf('/') + 1) }));

// Skipped only outside CI: under CI=true a missing server fails in beforeAll, saying why.
describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('PostgresJobStore against the conformance suite', () => {
  const server = usePostgres();
  let databases = 0;

  describeJobStore('PostgreSQL', async ({ leaseMs } = {}) => {
    // pg 8 lets a connection string's empty password win over a `password` option: the tests put it in the URL.
    const url = new URL(await server.createDatabase(`conformance_${++databases}`));
    url.password = server.password;
    const events: TransitionEvent[] = [];
    const stores: PostgresJobStore[] = [];
    // Two processes of one machine: the suite reads the daemon's per-host words (folders, bandwidth) through either.
    const openAs = async (pid: number, onTransition?: (event: TransitionEvent) => void) => {
      const store = await PostgresJobStore.open({ url: url.href, holder: { host: 'studio-a', pid }, folders: FOLDERS, leaseMs, onTransition });
      stores.push(store);
      return store;
    };
    const store = await openAs(1001, (event) => events.push(event));
    const other = await openAs(1002);
    return {
      store,
      other,
      events,
      async reopen() {
        await store.close();
        await other.close();
        return openAs(1001);
      },
      async close() {
        for (const opened of stores) await opened.close();
      },
    };
  });
});
