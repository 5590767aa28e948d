import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/store/db.js';
import { FutureSchemaError, migrate } from '../../src/store/migrate.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { unrecordedHeads } from '../../src/store/migrations/009-unrecorded-heads.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import type { TransitionEvent } from '../../src/store/job.js';
import { useTempDir } from '../helpers/tempDir.js';
import { describeJobStore, rowIn, VERSION, type OpenStore } from './conformance.js';

const tempDir = useTempDir();

/**
 * SQLite files in a temp dir. `other` is a second connection to the same
 * file, claiming for the test runner's parent process: a live process, as a
 * running `upload FILE` beside the daemon would be.
 */
function openSqlite(groupCommit?: { windowMs: number; announceWithinMs: number }): OpenStore {
  return async ({ leaseMs } = {}) => {
    const file = join(tempDir(), 'state', 'state.db');
    const events: TransitionEvent[] = [];
    const open: { db: Database.Database; store: SqliteJobStore }[] = [];
    const connect = (options: { pid?: number; onTransition?: (event: TransitionEvent) => void } = {}) => {
      const db = openDatabase(file);
      const store = new SqliteJobStore(db, { ...options, leaseMs, groupCommit });
      open.push({ db, store });
      return store;
    };
    const close = async () => {
      for (const { db, store } of open.splice(0)) {
        // A sync still to come would find the temp dir gone.
        await store.durable();
        db.close();
      }
    };
    return {
      store: connect({ onTransition: (event) => events.push(event) }),
      other: connect({ pid: process.ppid }),
      events,
      reopen: async () => {
        await close();
        return connect();
      },
      close,
    };
  };
}

describeJobStore('SqliteJobStore', openSqlite());
describeJobStore('SqliteJobStore with group commit', openSqlite({ windowMs: 1, announceWithinMs: 5 }));

function openStore(events: TransitionEvent[] = []) {
  const file = join(tempDir(), 'state', 'state.db');
  const db = openDatabase(file);
  return { file, db, store: new SqliteJobStore(db, { onTransition: (e) => events.push(e) }) };
}

describe('state database', () => {
  it('is created 0600 in a 0700 directory, in WAL mode with synchronous=FULL and a 2 MB page cache', () => {
    const { file, db } = openStore();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    // better-sqlite3's build default is 16 MB (-16000), which the daemon's RSS would grow into as history builds up.
    expect(db.pragma('cache_size', { simple: true })).toBe(-2000);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    db.close();
  });

  it('tightens a database file that already exists to 0600', () => {
    const file = join(tempDir(), 'pre.db');
    writeFileSync(file, '', { mode: 0o644 });
    openDatabase(file).close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('migrates a fresh database and refuses one from a newer version', () => {
    const file = join(tempDir(), 'x.db');
    const db = new Database(file);
    migrate(db, file);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'jobs'").get()).toBeDefined();
    db.pragma('user_version = 99');
    expect(() => migrate(db, file)).toThrow(FutureSchemaError);
    db.close();
  });

  it('migrates a version 1 database with rows to the upload lease columns, keeping the rows', () => {
    const file = join(tempDir(), 'v1.db');
    const db = new Database(file);
    migrate(db, file, MIGRATIONS.slice(0, 1));
    db.prepare(`INSERT INTO jobs (session_id, folder, path, size, mtime_ms, state, created_at, updated_at) VALUES ('s', '/f', '/f/a.wav', 1, 1, 'uploading', 1, 1)`).run();
    migrate(db, file);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.prepare('SELECT session_id, state, owner_pid, lease_until FROM jobs').get()).toEqual({ session_id: 's', state: 'uploading', owner_pid: null, lease_until: null });
    db.close();
  });

  it('makes a move that failed before migration 008 due again, with no plan (the folder setting decides), instead of a note', () => {
    const file = join(tempDir(), 'v7.db');
    const db = new Database(file);
    migrate(db, file, MIGRATIONS.slice(0, 7));
    const insert = db.prepare(`INSERT INTO jobs (session_id, folder, path, size, mtime_ms, state, error, created_at, updated_at) VALUES (?, '/f', ?, 1, 1, 'done', ?, 1, 1)`);
    insert.run('s1', '/f/stuck.wav', 'uploaded, but the after-upload step failed: EACCES: permission denied');
    insert.run('s2', '/f/fine.wav', null);
    migrate(db, file);
    expect(db.prepare('SELECT j.path, j.error, f.kind, f.plan, f.due_at FROM follow_ups f JOIN jobs j ON j.id = f.job_id').all()).toEqual([
      { path: '/f/stuck.wav', error: null, kind: 'after-upload', plan: 'null', due_at: 0 },
    ]);
    db.close();
  });

  it('keeps a half-applied migration from sticking', () => {
    const file = join(tempDir(), 'y.db');
    const db = new Database(file);
    const broken = [{ version: 1, up: (d: Database.Database) => d.exec('CREATE TABLE a (x); CREATE TABLE a (x);') }];
    expect(() => migrate(db, file, broken)).toThrow();
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'a'").get()).toBeUndefined();
    db.close();
  });

  it('takes an upload from before migration 007, with no recorded beginning, as possibly the same bytes (migration 009)', async () => {
    const { db, store } = openStore();
    await rowIn(store, 'done', { name: 'original.wav', sha256: 'abc' });
    const waiting = await rowIn(store, 'waiting', { name: 'not yet.wav' });
    // As migration 009 finds such a row: its head NULL, like every row not uploaded yet, which must stay NULL.
    db.prepare('UPDATE jobs SET head_sha256 = NULL').run();
    unrecordedHeads.up(db);
    expect(db.prepare('SELECT head_sha256 FROM jobs WHERE id = ?').pluck().get(waiting.id)).toBeNull();
    const copy = await rowIn(store, 'queued', { name: 'copy.wav' });
    expect((await store.claimUpload(copy.id, 'any head'))?.reservation).toEqual({ kind: 'hash' });
  });
});

describe('SqliteJobStore holders', () => {
  /** A pid that certainly belongs to no running process: a child that has exited. */
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;

  it('claims for a process: its pid is the holder', async () => {
    const { file, store } = openStore();
    const other = new SqliteJobStore(openDatabase(file), { pid: process.ppid });
    expect((await rowIn(store, 'uploading')).ownerPid).toBe(process.pid);
    const step = await rowIn(store, 'mastering', { nextAttemptAt: 0 });
    expect(await other.claimStep(step.id)).toBe(true);
    expect((await store.get(step.id)).ownerPid).toBe(process.ppid);
  });

  it('takes over the claims of a process that is gone at once, without waiting for their leases to lapse', async () => {
    const { file, store } = openStore();
    const dead = new SqliteJobStore(openDatabase(file), { pid: deadPid });
    const upload = await rowIn(store, 'uploading', { claimedBy: dead });
    const step = await rowIn(store, 'mastering', { nextAttemptAt: 0 });
    expect(await dead.claimStep(step.id)).toBe(true);
    const stored = await rowIn(store, 'uploaded');
    await store.transition(stored.id, 'done', {}, [{ kind: 'on-done', plan: null }]);
    const followUp = await dead.claimFollowUp(stored.id, 'on-done', { mustBeDue: true });
    expect(followUp?.leaseUntil).toBeGreaterThan(Date.now());

    await store.releaseOrphanedUploads(() => false);
    expect(await store.get(upload.id)).toMatchObject({ state: 'retrying', sessionId: upload.sessionId });
    expect((await store.dueSteps(Date.now(), 10)).map((job) => job.id)).toEqual([step.id]);
    expect(await store.claimStep(step.id)).toBe(true);
    expect((await store.get(step.id)).ownerPid).toBe(process.pid);
    expect(await store.dueFollowUps(Date.now(), 10)).toEqual([followUp]);
    expect(await store.claimFollowUp(stored.id, 'on-done', { mustBeDue: true })).toMatchObject({ ownerPid: process.pid });
  });
});

describe('SqliteJobStore announcements', () => {
  it('still announces every committed transition when a listener throws, then reports the failure', async () => {
    const seen: string[] = [];
    const store = new SqliteJobStore(openDatabase(join(tempDir(), 'state', 'state.db')), {
      onTransition: (event) => {
        seen.push(event.job.state);
        if (event.job.state === 'queued') throw new Error('log sink is full');
      },
    });
    const job = await store.createVersion(VERSION);
    await expect(store.moveIf(job.id, () => [{ to: 'queued' }, { to: 'uploading' }])).rejects.toThrow('log sink is full');
    expect(seen).toEqual(['waiting', 'queued', 'uploading']);
    expect((await store.get(job.id)).state).toBe('uploading');
  });

  it('announces nothing of a commit that fails at COMMIT', async () => {
    const events: TransitionEvent[] = [];
    const { db, store } = openStore(events);
    const job = await rowIn(store, 'queued');
    // A claim that points its row at a row that does not exist: the deferred foreign key fails the COMMIT, not a statement.
    db.exec(`CREATE TEMP TRIGGER dangling AFTER UPDATE OF state ON jobs WHEN new.state = 'uploading' BEGIN UPDATE jobs SET duplicate_of = 9999 WHERE id = new.id; END`);
    db.pragma('defer_foreign_keys = ON');
    await expect(store.claimUpload(job.id)).rejects.toThrow(/FOREIGN KEY/);
    expect(await store.get(job.id)).toEqual(job);
    expect(events.map((event) => [event.from, event.job.state]).at(-1)).toEqual(['waiting', 'queued']);
  });
});

describe('SqliteJobStore reads', () => {
  it('maps the live versions of a folder at the root of the file system: its prefix is / itself', async () => {
    const { store } = openStore();
    await store.createVersion({ ...VERSION, folder: '/', path: '/top.wav' });
    await store.createVersion({ ...VERSION, folder: '/', path: '/srv/deep.wav' });
    expect([...(await store.versionsInDirectory('/', '/')).keys()]).toEqual(['/top.wav']);
  });

  it('has the indexes that keep the status page\'s reads off the whole history (migrations 004 and 005)', () => {
    const { db } = openStore();
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]).map((row) => row.name);
    expect(indexes).toEqual(expect.arrayContaining(['jobs_recent', 'jobs_folder_sha256']));
  });

  it('reads the first queued rows and the unfinished ones from indexes, without sorting or walking the history (migration 006)', async () => {
    const { db, store } = openStore();
    /** The query plans of the statements `query` prepares (the store prepares each once, on first use). */
    const plan = async (query: () => Promise<unknown>) => {
      const prepare = db.prepare.bind(db);
      const details: string[] = [];
      const spy = vi.spyOn(db, 'prepare').mockImplementation((source: string) => {
        const parameters = Array.from(source.matchAll(/\?/g), () => null);
        details.push(...(prepare(`EXPLAIN QUERY PLAN ${source}`).all(...parameters) as { detail: string }[]).map((row) => row.detail));
        return prepare(source);
      });
      try {
        await query();
      } finally {
        spy.mockRestore();
      }
      return details.join(' | ');
    };
    expect(await plan(() => store.inState('queued', 2))).toMatch(/USING (COVERING )?INDEX jobs_state_order \(state=\?\)$/);
    expect(await plan(() => store.unfinished())).toMatch(/^SCAN jobs USING INDEX jobs_unfinished$/);
  });
});
