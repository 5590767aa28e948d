import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job, TransitionEvent, UploadReservation } from '../../src/store/job.js';
import { Connection } from '../../src/store/postgres/connection.js';
import { PostgresFutureSchemaError, UnsharedPathError } from '../../src/store/postgres/errors.js';
import { migrate } from '../../src/store/postgres/migrate.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations/index.js';
import type { PostgresStoreOptions } from '../../src/store/postgres/options.js';
import { PostgresJobStore } from '../../src/store/postgres/store.js';
import { IllegalTransitionError } from '../../src/store/states.js';
import { postgresUnavailable, usePostgres } from '../helpers/postgres.js';

const unavailable = postgresUnavailable();
if (unavailable !== undefined) console.log(`PostgreSQL store tests: ${unavailable}`);

/** One share seen from two machines, mounted at different paths. */
const NAS = { path: '/mnt/nas/exports', share: 'exports' };
const SRV = { path: '/srv/exports', share: 'exports' };
const VERSION = { size: 2_000_000, mtimeMs: 1_700_000_000_123.456 };

// Skipped only outside CI: under CI=true a missing server fails in beforeAll, saying why.
describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('PostgresJobStore', () => {
  const server = usePostgres();
  let databases = 0;
  const opened: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const one of opened.splice(0)) await one.close();
  });

  /** A fresh database; its URL carries the password, as pg 8 only takes it there or from PGPASSWORD. */
  const freshDatabase = async () => {
    const url = new URL(await server.createDatabase(`store_${++databases}`));
    url.password = server.password;
    return url.href;
  };

  /** A daemon on `host` (pid 1000 unless given) with the folders given (NAS's by default). */
  const open = async (url: string, options: Partial<PostgresStoreOptions> & { host?: string } = {}) => {
    const { host = 'studio-a', ...rest } = options;
    const store = await PostgresJobStore.open({ url, holder: { host, pid: 1000 }, folders: [NAS], ...rest });
    opened.push(store);
    return store;
  };

  /** A plain client on the same database, for looking under the store. */
  const sql = async <R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  };

  const queued = async (store: PostgresJobStore, name: string, folder = NAS.path) => {
    const job = await store.createVersion({ folder, path: `${folder}/${name}`, ...VERSION });
    return store.transition(job.id, 'queued');
  };

  describe('schema', () => {
    it('is migrated once when three daemons open a fresh database at the same time', async () => {
      const url = await freshDatabase();
      const stores = await Promise.all(['a', 'b', 'c'].map((host) => open(url, { host: `studio-${host}` })));
      expect(await sql(url, 'SELECT version FROM schema_migrations ORDER BY version')).toEqual(POSTGRES_MIGRATIONS.map(({ version }) => ({ version })));
      const job = await stores[0]!.createVersion({ folder: NAS.path, path: `${NAS.path}/a.wav`, ...VERSION });
      expect(await stores[2]!.get(job.id)).toEqual(job);
      // Opening again runs nothing: a shipped migration's CREATE TABLE would fail if it ran twice.
      await open(url);
    });

    it('makes migrations take turns: a slow one started by three connections at once is applied by one', async () => {
      const url = await freshDatabase();
      const slow = [{ version: 1, sql: 'SELECT pg_sleep(0.3); CREATE TABLE once_only (id integer)' }];
      const connections = [1, 2, 3].map(() => new Connection({ url }));
      opened.push(...connections);
      await Promise.all(connections.map((connection) => migrate(connection, slow)));
      expect(await sql(url, 'SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
    });

    it('leaves nothing of a migration that fails halfway', async () => {
      const url = await freshDatabase();
      const connection = new Connection({ url });
      opened.push(connection);
      const broken = [{ version: 1, sql: 'CREATE TABLE half (id integer); CREATE TABLE half (id integer)' }];
      await expect(migrate(connection, broken)).rejects.toThrow(/already exists/);
      expect(await sql(url, "SELECT to_regclass('half') AS found, to_regclass('schema_migrations') AS versions")).toEqual([{ found: null, versions: null }]);
    });

    it('refuses a database written by a newer cryomix-watch, naming it', async () => {
      const url = await freshDatabase();
      await open(url);
      await sql(url, 'INSERT INTO schema_migrations (version) VALUES (99)');
      const refused = open(url);
      await expect(refused).rejects.toThrow(PostgresFutureSchemaError);
      await expect(refused).rejects.toThrow(`127.0.0.1:${server.port}/store_${databases} as cryomix`);
    });

    it('reads bigints and fractional mtimes back as numbers, without touching pg\'s global type parsers', async () => {
      const store = await open(await freshDatabase());
      const big = await store.createVersion({ folder: NAS.path, path: `${NAS.path}/long.wav`, size: 5_000_000_000, mtimeMs: 1_700_000_000_123.456 });
      expect(await store.get(big.id)).toMatchObject({ size: 5_000_000_000, mtimeMs: 1_700_000_000_123.456, createdAt: expect.any(Number) });
      expect(await store.counts()).toMatchObject({ waiting: 1 });
      // Other code in the process may rely on node-postgres's default: int8 as a string.
      expect(pg.types.getTypeParser(pg.types.builtins.INT8)('5000000000')).toBe('5000000000');
    });
  });

  describe('shares', () => {
    it('makes the same file, seen through two folder paths of one share, one row', async () => {
      const url = await freshDatabase();
      const nas = await open(url, { host: 'studio-a', folders: [NAS] });
      const srv = await open(url, { host: 'studio-b', folders: [SRV] });
      const created = await nas.createVersion({ folder: NAS.path, path: `${NAS.path}/album/a.wav`, ...VERSION });
      const seen = await srv.current(`${SRV.path}/album/a.wav`);
      expect(seen).toEqual({ ...created, folder: SRV.path, path: `${SRV.path}/album/a.wav` });
      expect(await srv.versionsInDirectory(SRV.path, `${SRV.path}/album`)).toEqual(new Map([[`${SRV.path}/album/a.wav`, { state: 'waiting', ...VERSION }]]));
      expect(await sql(url, 'SELECT share, rel_path FROM jobs')).toEqual([{ share: 'exports', rel_path: 'album/a.wav' }]);
      // A new version seen by the other machine replaces this one: one live row per file, whoever saw it.
      await nas.transition(created.id, 'queued');
      const next = await srv.createVersion({ folder: SRV.path, path: `${SRV.path}/album/a.wav`, ...VERSION, size: 3 });
      expect(await nas.current(`${NAS.path}/album/a.wav`)).toMatchObject({ id: next.id, path: `${NAS.path}/album/a.wav` });
      expect(await nas.get(created.id)).toMatchObject({ state: 'removed', current: false });
    });

    it('refuses a path under no configured folder, naming it and the fix', async () => {
      const store = await open(await freshDatabase());
      await expect(store.current('/home/me/mix.wav')).rejects.toThrow(UnsharedPathError);
      await expect(store.current('/home/me/mix.wav')).rejects.toThrow(/\/home\/me\/mix\.wav is under no configured folder with a share: .*folders\[\]\.share/);
      // A look-alike sibling of a folder is not inside it.
      await expect(store.current(`${NAS.path}-old/mix.wav`)).rejects.toThrow(UnsharedPathError);
      await expect(store.createVersion({ folder: '/srv/unknown', path: '/srv/unknown/a.wav', ...VERSION })).rejects.toThrow(/\/srv\/unknown is not a configured folder/);
    });

    it('lists a share this machine does not mount as share: paths, and hands none of its work to this machine', async () => {
      const url = await freshDatabase();
      const studio = { path: '/srv/studio-only', share: 'studio' };
      const a = await open(url, { host: 'studio-a', folders: [NAS, studio] });
      const b = await open(url, { host: 'studio-b', folders: [SRV] });
      const theirs = await queued(a, 'x.wav', studio.path);
      const shared = await queued(a, 'y.wav');
      expect((await b.list()).map((job) => job.path)).toEqual([`${SRV.path}/y.wav`, 'studio:/x.wav']);
      expect(await b.get(theirs.id)).toMatchObject({ folder: 'studio:', path: 'studio:/x.wav' });
      expect(await b.queuedIds(10)).toEqual([shared.id]);
      expect(await a.queuedIds(10)).toEqual([theirs.id, shared.id]);
      expect((await b.unfinished()).map((job) => job.id)).toEqual([shared.id]);
      expect(await b.counts()).toMatchObject({ queued: 2 });
    });

    it('gives two daemons that see the same new file at once one live row', async () => {
      const url = await freshDatabase();
      const nas = await open(url, { host: 'studio-a', folders: [NAS] });
      const srv = await open(url, { host: 'studio-b', folders: [SRV] });
      for (let round = 0; round < 10; round++) {
        const [seenByNas, seenBySrv] = await Promise.all([
          nas.createVersion({ folder: NAS.path, path: `${NAS.path}/same ${round}.wav`, ...VERSION }),
          srv.createVersion({ folder: SRV.path, path: `${SRV.path}/same ${round}.wav`, ...VERSION }),
        ]);
        // One Session-Id for the file, whichever daemon wrote the row.
        expect(seenBySrv.sessionId).toBe(seenByNas.sessionId);
      }
      expect(await sql(url, 'SELECT count(*)::int AS rows FROM jobs')).toEqual([{ rows: 10 }]);
    });
  });

  describe('claims between holders', () => {
    it('lets two holders racing for 50 queued rows claim each exactly once', async () => {
      const url = await freshDatabase();
      const a = await open(url, { host: 'studio-a', holder: { host: 'studio-a', pid: 1 } });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 2 }, folders: [SRV] });
      const jobs: Job[] = [];
      for (let i = 0; i < 50; i++) jobs.push(await queued(a, `race ${i}.wav`));
      const ids = jobs.map((job) => job.id);
      // Opposite orders, all at once: each holder runs into rows the other is claiming.
      const [byA, byB] = await Promise.all([Promise.all(ids.map((id) => a.claimUpload(id))), Promise.all([...ids].reverse().map((id) => b.claimUpload(id)))]);
      const winners = new Map<number, number[]>();
      for (const claim of [...byA, ...byB]) if (claim) winners.set(claim.job.id, [...(winners.get(claim.job.id) ?? []), claim.job.ownerPid!]);
      expect([...winners.keys()].sort((x, y) => x - y)).toEqual(ids);
      expect([...winners.values()].every((pids) => pids.length === 1)).toBe(true);
      const rows = await sql<{ id: number; attempts: number; owner_pid: number }>(url, "SELECT id::int, attempts, owner_pid FROM jobs WHERE state = 'uploading' ORDER BY id");
      expect(rows).toEqual(ids.map((id) => ({ id, attempts: 1, owner_pid: winners.get(id)![0] })));
    });

    it('lets two holders popping the queue at once take different rows, oldest first, of their own shares', async () => {
      const url = await freshDatabase();
      const studio = { path: '/srv/studio-only', share: 'studio' };
      const a = await open(url, { holder: { host: 'studio-a', pid: 1 }, folders: [NAS, studio] });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 2 }, folders: [SRV] });
      const notForB = await queued(a, 'studio only.wav', studio.path);
      const ids: number[] = [];
      for (let i = 0; i < 40; i++) ids.push((await queued(a, `pop ${i}.wav`)).id);
      const pop = async (store: PostgresJobStore) => {
        const taken: Job[] = [];
        for (let job = await store.claimNextUpload(); job; job = await store.claimNextUpload()) taken.push(job);
        return taken;
      };
      const [byA, byB] = await Promise.all([pop(a), pop(b)]);
      expect([...byA, ...byB].map((job) => job.id).sort((x, y) => x - y)).toEqual([notForB.id, ...ids]);
      expect(byB.every((job) => job.id !== notForB.id && job.ownerPid === 2 && job.state === 'uploading')).toBe(true);
      expect(byB.length).toBeGreaterThan(0);
      // Each took its rows oldest first.
      for (const taken of [byA, byB]) expect(taken.map((job) => job.id)).toEqual(taken.map((job) => job.id).sort((x, y) => x - y));
    });

    it('skips a row another transaction holds instead of waiting for it', async () => {
      const url = await freshDatabase();
      const store = await open(url);
      const job = await queued(store, 'held.wav');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [job.id]);
        const started = Date.now();
        expect(await store.claimUpload(job.id)).toBeUndefined();
        expect(Date.now() - started).toBeLessThan(1_000);
        await client.query('ROLLBACK');
      } finally {
        await client.end();
      }
      expect((await store.claimUpload(job.id))?.job.state).toBe('uploading');
    });

    it('reserves the bytes of identical files claimed at once by two holders exactly once', async () => {
      const url = await freshDatabase();
      const a = await open(url, { host: 'studio-a', holder: { host: 'studio-a', pid: 1 } });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 2 }, folders: [SRV] });
      for (let round = 0; round < 3; round++) {
        const ids: number[] = [];
        for (let i = 0; i < 20; i++) ids.push((await queued(a, `render ${round}-${i}.wav`)).id);
        const head = `same beginning ${round}`;
        const claims = await Promise.all(ids.flatMap((id) => [a.claimUpload(id, head), b.claimUpload(id, head)]));
        const reservations = claims.flatMap((claim) => (claim?.reservation ? [{ id: claim.job.id, reservation: claim.reservation }] : []));
        expect(reservations).toHaveLength(20);
        const senders = reservations.filter(({ reservation }) => reservation.kind === 'send');
        expect(senders).toHaveLength(1);
        const waits = reservations.filter(({ reservation }) => reservation.kind === 'wait');
        expect(waits).toHaveLength(19);
        for (const { reservation } of waits) expect((reservation as Extract<UploadReservation, { kind: 'wait' }>).holder.id).toBe(senders[0]!.id);
      }
    });

    it('hands a lapsed lease to the other holder; the old holder can then neither renew, reserve nor file', async () => {
      const url = await freshDatabase();
      const a = await open(url, { host: 'studio-a', holder: { host: 'studio-a', pid: 1 }, leaseMs: 300 });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 2 }, folders: [SRV], leaseMs: 300 });
      const job = (await a.claimUpload((await queued(a, 'stalled.wav')).id))!.job;
      // Live: the other holder leaves it alone, even though no process of its own machine runs it.
      await b.releaseOrphanedUploads(() => false);
      expect((await b.get(job.id)).state).toBe('uploading');
      await sleep(450);
      await b.releaseOrphanedUploads(() => false);
      expect(await b.get(job.id)).toMatchObject({ state: 'retrying', sessionId: job.sessionId });
      await b.transition(job.id, 'queued');
      const taken = (await b.claimUpload(job.id, 'head'))!;
      expect(taken.job).toMatchObject({ state: 'uploading', ownerPid: 2, attempts: 2 });
      expect(await a.renewLease(job.id)).toBe(false);
      expect(await a.reserveUpload(job, 'head')).toEqual({ kind: 'lost' });
      expect(await a.fileOutcome(job.id, 'uploaded', { sha256: 'abc' })).toBeUndefined();
      expect(await b.fileOutcome(job.id, 'uploaded', { sha256: 'abc' })).toMatchObject({ state: 'uploaded', ownerPid: 2 });
    });

    it('keeps a lease that is renewed in time', async () => {
      const url = await freshDatabase();
      const a = await open(url, { holder: { host: 'studio-a', pid: 1 }, leaseMs: 300 });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 2 }, folders: [SRV], leaseMs: 300 });
      const job = (await a.claimUpload((await queued(a, 'long.wav')).id))!.job;
      for (let i = 0; i < 3; i++) {
        await sleep(150);
        expect(await a.renewLease(job.id)).toBe(true);
      }
      await b.releaseOrphanedUploads(() => false);
      expect(await b.get(job.id)).toMatchObject({ state: 'uploading', ownerPid: 1 });
    });

    it('judges leases by the database\'s clock, whatever the machines\' clocks say', async () => {
      const url = await freshDatabase();
      const day = 86_400_000;
      const a = await open(url, { holder: { host: 'studio-a', pid: 1 }, now: () => Date.now() - day });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 2 }, folders: [SRV], now: () => Date.now() + day });
      const upload = (await a.claimUpload((await queued(a, 'a.wav')).id))!.job;
      const step = await a.createVersion({ folder: NAS.path, path: `${NAS.path}/m.wav`, ...VERSION });
      for (const to of ['queued', 'uploading', 'uploaded', 'mastering'] as const) await a.transition(step.id, to, to === 'mastering' ? { nextAttemptAt: 0 } : {});
      expect(await a.claimStep(step.id)).toBe(true);
      // A day ahead, b would think every lease set by a's clock long lapsed; by the database's clock they are fresh.
      await b.releaseOrphanedUploads(() => false);
      expect((await b.get(upload.id)).state).toBe('uploading');
      expect(await b.claimStep(step.id)).toBe(false);
      expect(await b.dueSteps(Date.now() + 2 * day, 10)).toEqual([]);
      const rows = await sql(url, "SELECT lease_until BETWEEN now() AND now() + interval '31 seconds' AS fresh FROM jobs WHERE id = $1", [upload.id]);
      expect(rows).toEqual([{ fresh: true }]);
    });
  });

  describe('transactions', () => {
    /** A pool whose clients note when each COMMIT or ROLLBACK has returned, in `log`. */
    const recordingPool = (url: string, log: string[]) => {
      class RecordingClient extends pg.Client {
        override query(...args: unknown[]): never {
          const first = args[0];
          const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text;
          const result = (super.query as (...all: unknown[]) => unknown)(...args);
          if ((text === 'COMMIT' || text === 'ROLLBACK') && result instanceof Promise) result.then(() => log.push(text), () => log.push(`${text} failed`));
          return result as never;
        }
      }
      const pool = new pg.Pool({ connectionString: url, Client: RecordingClient });
      opened.push({ close: () => pool.end() });
      return pool;
    };

    it('announces transitions only after COMMIT has returned, and none of a transaction rolled back', async () => {
      const url = await freshDatabase();
      const log: string[] = [];
      const store = await open(url, { url: undefined, pool: recordingPool(url, log), onTransition: (event: TransitionEvent) => log.push(`${event.from} → ${event.job.state}`) });
      const job = await store.createVersion({ folder: NAS.path, path: `${NAS.path}/a.wav`, ...VERSION });
      await store.moveIf(job.id, () => [{ to: 'queued' }, { to: 'uploading' }]);
      expect(log.slice(-5)).toEqual(['COMMIT', 'null → waiting', 'COMMIT', 'waiting → queued', 'queued → uploading']);

      log.length = 0;
      await expect(store.fileOutcome(job.id, 'uploaded', {}, () => [{ to: 'done' }])).resolves.toBeUndefined();
      await expect(store.moveIf(job.id, () => [{ to: 'retrying' }, { to: 'done' }])).rejects.toThrow(IllegalTransitionError);
      expect(log).toEqual(['COMMIT', 'ROLLBACK']);
      expect((await store.get(job.id)).state).toBe('uploading');
    });

    it('announces nothing when COMMIT itself fails', async () => {
      const url = await freshDatabase();
      const events: TransitionEvent[] = [];
      const store = await open(url, { onTransition: (event) => events.push(event) });
      // A check PostgreSQL makes only at COMMIT.
      await sql(url, 'ALTER TABLE jobs ADD CONSTRAINT one_md5 UNIQUE (md5) DEFERRABLE INITIALLY DEFERRED');
      const first = await store.createVersion({ folder: NAS.path, path: `${NAS.path}/a.wav`, ...VERSION });
      const second = await store.createVersion({ folder: NAS.path, path: `${NAS.path}/b.wav`, ...VERSION });
      await store.transition(first.id, 'rejected', { md5: 'same' });
      const before = events.length;
      await expect(store.transition(second.id, 'rejected', { md5: 'same' })).rejects.toMatchObject({ code: '23505' });
      expect(events).toHaveLength(before);
      expect((await store.get(second.id)).state).toBe('waiting');
      // The connection that failed to commit went back to the pool clean.
      for (let i = 0; i < 12; i++) await store.get(first.id);
    });

    it('keeps a connection out of a transaction after a decision throws', async () => {
      const url = await freshDatabase();
      const store = await open(url);
      const job = await store.createVersion({ folder: NAS.path, path: `${NAS.path}/a.wav`, ...VERSION });
      for (let i = 0; i < 15; i++) {
        await expect(
          store.moveIf(job.id, () => {
            throw new Error('plan unreadable');
          }),
        ).rejects.toThrow('plan unreadable');
      }
      const stuck = await sql(url, "SELECT count(*)::int AS stuck FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'");
      expect(stuck).toEqual([{ stuck: 0 }]);
      expect((await store.transition(job.id, 'queued')).state).toBe('queued');
    });
  });

  describe('work made due on one daemon', () => {
    it('is heard by the others at once (LISTEN/NOTIFY), only once committed, and again after their connection was cut', async () => {
      const url = await freshDatabase();
      const a = await open(url, { host: 'studio-a' });
      const b = await open(url, { host: 'studio-b', folders: [SRV] });
      let heard = 0;
      const stop = b.listenForWork(() => heard++);
      try {
        /** Queues files until `b` hears of one: listening takes a moment to begin, and to begin again. */
        const queueUntilHeard = async (name: string) => {
          const before = heard;
          for (let round = 0; round < 50 && heard === before; round++) {
            await queued(a, `${name} ${round}.wav`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          return heard > before;
        };
        expect(await queueUntilHeard('first')).toBe(true);

        const before = heard;
        const waiting = await a.createVersion({ folder: NAS.path, path: `${NAS.path}/undone.wav`, ...VERSION });
        await expect(a.moveIf(waiting.id, () => [{ to: 'queued' }, { to: 'done' }])).rejects.toThrow(/cannot become done/);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(heard).toBe(before);

        await sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'");
        expect(await queueUntilHeard('after the cut')).toBe(true);
      } finally {
        stop();
      }
    });
  });

  describe("what the daemons tell each other's status", () => {
    it('shares the pause of the API key between daemons, and keeps folder states and bandwidth per host', async () => {
      const url = await freshDatabase();
      const a = await open(url, { host: 'studio-a' });
      const aAgain = await open(url, { host: 'studio-a', holder: { host: 'studio-a', pid: 4242 } });
      const b = await open(url, { host: 'studio-b', holder: { host: 'studio-b', pid: 1000 }, folders: [SRV] });
      await a.setPaused({ reason: 'key rejected', since: 1 });
      await a.setFolderStates([{ path: NAS.path, problem: { problem: 'unmounted', since: 5 } }]);
      await a.setBandwidth({ limitBytesPerSecond: 1_000 });
      expect(await b.paused()).toEqual({ reason: 'key rejected', since: 1 });
      expect(await b.folderStates()).toEqual([]);
      expect(await b.bandwidth()).toBeNull();
      expect(await aAgain.folderStates()).toEqual([{ path: NAS.path, problem: { problem: 'unmounted', since: 5 } }]);
      expect(await aAgain.bandwidth()).toEqual({ limitBytesPerSecond: 1_000 });
      await b.setPaused(null);
      expect(await a.paused()).toBeNull();
    });
  });
});
