import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/store/db.js';
import { FutureSchemaError, migrate } from '../../src/store/migrate.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { unrecordedHeads } from '../../src/store/migrations/009-unrecorded-heads.js';
import { JobStore } from '../../src/store/jobs.js';
import type { Job, TransitionEvent } from '../../src/store/job.js';
import { IllegalTransitionError } from '../../src/store/states.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();

function openStore(events: TransitionEvent[] = []) {
  const file = join(tempDir(), 'state', 'state.db');
  const db = openDatabase(file);
  return { file, db, store: new JobStore(db, { onTransition: (e) => events.push(e) }) };
}

const version = { folder: '/srv/in', path: '/srv/in/mix.wav', size: 2_000_000, mtimeMs: 1_700_000_000_123.456 };

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
});

describe('JobStore', () => {
  it('gives each file version its own Session-Id, committed at creation', () => {
    const { store, file, db } = openStore();
    const first = store.createVersion(version);
    expect(first.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.state).toBe('waiting');
    db.close();
    // Durable: another connection sees the same id.
    const again = new JobStore(openDatabase(file));
    expect(again.current(version.path)?.sessionId).toBe(first.sessionId);
    expect(again.current(version.path)?.mtimeMs).toBe(version.mtimeMs);
  });

  it('retires an unfinished version when a new one appears, keeping one current row per path', () => {
    const { store } = openStore();
    const first = store.createVersion(version);
    store.transition(first.id, 'queued');
    const second = store.createVersion({ ...version, size: 3_000_000 });
    expect(second.sessionId).not.toBe(first.sessionId);
    expect(store.get(first.id)).toMatchObject({ state: 'removed', current: false, error: 'replaced by a newer version of the file' });
    expect(store.current(version.path)?.id).toBe(second.id);
  });

  it('keeps a done version as history when the file changes later', () => {
    const { store } = openStore();
    const first = store.createVersion(version);
    for (const to of ['queued', 'uploading', 'uploaded', 'done'] as const) store.transition(first.id, to);
    store.createVersion({ ...version, mtimeMs: version.mtimeMs + 1 });
    expect(store.get(first.id)).toMatchObject({ state: 'done', current: false });
  });

  it('throws on an illegal transition and leaves the row untouched', () => {
    const { store } = openStore();
    const job = store.createVersion(version);
    expect(() => store.transition(job.id, 'done')).toThrow(IllegalTransitionError);
    expect(store.get(job.id).state).toBe('waiting');
  });

  it('claims a queued job once, leasing it to this process', () => {
    const { store } = openStore();
    const job = store.createVersion(version);
    store.transition(job.id, 'queued');
    const claimed = store.claim(job.id)!;
    expect(claimed).toMatchObject({ state: 'uploading', attempts: 1, ownerPid: process.pid });
    expect(claimed.leaseUntil).toBeGreaterThan(Date.now());
    expect(store.claim(job.id)).toBeUndefined();
  });

  it('moves a row conditionally, so two processes cannot both take it', () => {
    const { store } = openStore();
    const job = store.createVersion(version);
    expect(store.transitionIf(job.id, 'retrying', 'queued')).toBeUndefined();
    expect(store.transitionIf(job.id, 'waiting', 'queued')?.state).toBe('queued');
  });

  it('finishes an uploaded predecessor as done when the file changes, since its bytes are stored', () => {
    const { store } = openStore();
    const first = store.createVersion(version);
    for (const to of ['queued', 'uploading', 'uploaded'] as const) store.transition(first.id, to);
    store.createVersion({ ...version, size: 5 });
    expect(store.get(first.id)).toMatchObject({ state: 'done', current: false });
  });

  it('keeps signed URL queries out of stored errors', () => {
    const { store } = openStore();
    const job = store.createVersion(version);
    store.transition(job.id, 'rejected', { error: 'storage said: bad https://s.example/b/o.wav?X-Goog-Signature=abc&X-Goog-Date=1' });
    expect(store.get(job.id).error).toBe('storage said: bad https://s.example/b/o.wav?<redacted>');
  });

  it('reports every transition with the time spent in the previous state', () => {
    const events: TransitionEvent[] = [];
    const { store } = openStore(events);
    const job = store.createVersion(version);
    store.transition(job.id, 'rejected', { error: 'too small' });
    expect(events.map((e) => [e.from, e.job.state])).toEqual([
      [null, 'waiting'],
      ['waiting', 'rejected'],
    ]);
    expect(events[1]!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('reports the transitions of a transaction only once it has committed, and none that were rolled back', () => {
    const events: TransitionEvent[] = [];
    const { db, store } = openStore(events);
    const job = store.createVersion(version);
    const moves = () => events.slice(1).map((e) => [e.from, e.job.state]);

    store.atomically(() => {
      store.transition(job.id, 'queued');
      store.claim(job.id);
      expect(moves()).toEqual([]);
    });
    expect(moves()).toEqual([
      ['waiting', 'queued'],
      ['queued', 'uploading'],
    ]);

    expect(() =>
      store.atomically(() => {
        store.fileOutcome(job.id, 'uploaded');
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(store.get(job.id).state).toBe('uploading');
    expect(moves()).toHaveLength(2);

    store.atomically(() => {
      expect(() =>
        store.atomically(() => {
          store.fileOutcome(job.id, 'uploaded');
          throw new Error('inner step failed');
        }),
      ).toThrow('inner step failed');
      store.fileOutcome(job.id, 'retrying', { nextAttemptAt: 1 });
    });
    expect(store.get(job.id).state).toBe('retrying');
    expect(moves().at(-1)).toEqual(['uploading', 'retrying']);
    expect(moves()).toHaveLength(3);

    // A COMMIT that fails (here a deferred foreign key) rolls everything back: nothing is announced.
    store.transition(job.id, 'queued');
    db.pragma('defer_foreign_keys = ON');
    expect(() =>
      store.atomically(() => {
        store.claim(job.id);
        db.prepare('UPDATE jobs SET duplicate_of = 9999 WHERE id = ?').run(job.id);
      }),
    ).toThrow(/FOREIGN KEY/);
    expect(store.get(job.id).state).toBe('queued');
    expect(moves().at(-1)).toEqual(['retrying', 'queued']);
  });

  it('still announces every committed transition when a listener throws, then reports the failure', () => {
    const seen: string[] = [];
    const file = join(tempDir(), 'state', 'state.db');
    const store = new JobStore(openDatabase(file), {
      onTransition: (event) => {
        seen.push(event.job.state);
        if (event.job.state === 'queued') throw new Error('log sink is full');
      },
    });
    const job = store.createVersion(version);
    expect(() =>
      store.atomically(() => {
        store.transition(job.id, 'queued');
        store.claim(job.id);
      }),
    ).toThrow('log sink is full');
    expect(seen).toEqual(['waiting', 'queued', 'uploading']);
    expect(store.get(job.id).state).toBe('uploading');
  });

  it('finds due retries, the next due time, and counts per state', () => {
    const { store } = openStore();
    const job = store.createVersion(version);
    store.transition(job.id, 'queued');
    store.claim(job.id);
    store.transition(job.id, 'retrying', { nextAttemptAt: 5_000 });
    expect(store.dueRetries(4_999)).toEqual([]);
    expect(store.dueRetries(5_000).map((j) => j.id)).toEqual([job.id]);
    expect(store.nextDueAt()).toBe(5_000);
    expect(store.counts()).toMatchObject({ retrying: 1, waiting: 0 });
  });

  describe('reserveUpload', () => {
    /** A claimed row of `version`'s folder and size, under its own name. */
    const claimed = (store: JobStore, name: string) => {
      const job = store.createVersion({ ...version, path: `/srv/in/${name}` });
      store.transition(job.id, 'queued');
      return store.claim(job.id)!;
    };

    it('lets one of several same-size files with the same beginning send; the others wait for it', () => {
      const { store } = openStore();
      const [first, second, other] = ['first.wav', 'second.wav', 'other.wav'].map((name) => claimed(store, name)) as [Job, Job, Job];
      expect(store.reserveUpload(second, 'head')).toEqual({ kind: 'send' });
      expect(store.reserveUpload(first, 'head')).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: second.id }) });
      // Same size, another beginning: not the same bytes, so nothing to wait for.
      expect(store.reserveUpload(other, 'other head')).toEqual({ kind: 'send' });
      // The holder's attempt ends, and a new claim of it has not decided yet: it holds nothing.
      store.fileOutcome(second.id, 'retrying', { nextAttemptAt: 0 });
      store.transition(second.id, 'queued');
      const secondAgain = store.claim(second.id)!;
      expect(store.reserveUpload(first, 'head')).toEqual({ kind: 'send' });
      expect(store.reserveUpload(secondAgain, 'head')).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: first.id }) });
    });

    it('asks for the whole hash after a stored upload of the same size and beginning, then finds it in the same folder only', () => {
      const { store } = openStore();
      const original = claimed(store, 'original.wav');
      store.fileOutcome(original.id, 'uploaded', { sha256: 'abc', headSha256: 'head' });
      store.transition(original.id, 'mastering', { nextAttemptAt: 0 });
      const copy = claimed(store, 'copy.wav');
      expect(store.reserveUpload(copy, 'other head')).toEqual({ kind: 'send' });
      expect(store.reserveUpload(copy, 'head')).toEqual({ kind: 'hash' });
      // Stored while its masters are still being made: the bytes are there.
      expect(store.reserveUpload(copy, 'head', 'abc')).toEqual({ kind: 'duplicate', original: expect.objectContaining({ id: original.id }) });
      expect(store.reserveUpload(copy, 'head', 'another sha256')).toEqual({ kind: 'send' });
      expect(store.reserveUpload({ ...copy, folder: '/srv/other' }, 'head', 'abc')).toEqual({ kind: 'send' });
    });

    it('makes a file that is no stored duplicate wait for a holder all the same; a failed row holds nothing', () => {
      const { store } = openStore();
      const original = claimed(store, 'original.wav');
      store.fileOutcome(original.id, 'uploaded', { sha256: 'stored bytes', headSha256: 'head' });
      store.transition(original.id, 'done');
      const [holder, copy, gaveUp, after] = ['holder.wav', 'copy.wav', 'gave up.wav', 'after.wav'].map((name) => claimed(store, name)) as [Job, Job, Job, Job];
      expect(store.reserveUpload(holder, 'head', 'other bytes')).toEqual({ kind: 'send' });
      expect(store.reserveUpload(copy, 'head', 'other bytes')).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: holder.id }) });
      expect(store.reserveUpload(gaveUp, 'second head')).toEqual({ kind: 'send' });
      store.fileOutcome(gaveUp.id, 'failed', { error: 'storage refused it' });
      expect(store.reserveUpload(after, 'second head')).toEqual({ kind: 'send' });
    });

    it('answers lost for a row that is no longer this process\'s upload', () => {
      const { store } = openStore();
      const job = claimed(store, 'taken over.wav');
      store.releaseOrphan(job.id, () => true, { nextAttemptAt: 0 });
      expect(store.reserveUpload(job, 'head')).toEqual({ kind: 'lost' });
      expect(store.get(job.id).state).toBe('retrying');
    });

    it('takes an upload from before migration 007, with no recorded beginning, as possibly the same bytes', () => {
      const { db, store } = openStore();
      const original = claimed(store, 'original.wav');
      store.fileOutcome(original.id, 'uploaded', { sha256: 'abc' });
      store.transition(original.id, 'done');
      const waiting = store.createVersion({ ...version, path: '/srv/in/not yet.wav' });
      // As migration 009 finds such a row: its head NULL, like every row not uploaded yet, which must stay NULL.
      db.prepare('UPDATE jobs SET head_sha256 = NULL').run();
      unrecordedHeads.up(db);
      expect(db.prepare('SELECT head_sha256 FROM jobs WHERE id = ?').pluck().get(waiting.id)).toBeNull();
      expect(store.reserveUpload(claimed(store, 'copy.wav'), 'any head')).toEqual({ kind: 'hash' });
    });
  });

  it('persists the pause so status can show it', () => {
    const { store } = openStore();
    expect(store.paused()).toBeNull();
    store.setPaused({ reason: 'key rejected', since: 1 });
    expect(store.paused()).toEqual({ reason: 'key rejected', since: 1 });
    store.setPaused(null);
    expect(store.paused()).toBeNull();
  });

  it('tightens a database file that already exists to 0600', () => {
    const dir = tempDir();
    const file = join(dir, 'pre.db');
    writeFileSync(file, '', { mode: 0o644 });
    openDatabase(file).close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('what the status page, STATUS= and the startup scan read', () => {
  it('lists the latest changes first, counts today\'s done files, and maps a folder\'s live versions', () => {
    let now = 1_000;
    const db = openDatabase(join(tempDir(), 'state.db'));
    const store = new JobStore(db, { now: () => now });
    const first = store.createVersion({ ...version, path: '/srv/in/a.wav' });
    now = 2_000;
    const second = store.createVersion({ ...version, path: '/srv/in/b.wav' });
    store.createVersion({ ...version, folder: '/srv/other', path: '/srv/other/c.wav' });
    now = 3_000;
    store.transition(first.id, 'queued');
    store.transition(first.id, 'uploading');
    store.transition(first.id, 'uploaded');
    store.transition(first.id, 'done');

    expect(store.recent(2).map((job) => job.path)).toEqual(['/srv/in/a.wav', '/srv/other/c.wav']);
    expect(store.doneSince(2_500)).toBe(1);
    expect(store.doneSince(3_001)).toBe(0);
    expect(store.versionsInDirectory('/srv/in', '/srv/in')).toEqual(
      new Map([
        ['/srv/in/a.wav', { state: 'done', size: version.size, mtimeMs: version.mtimeMs }],
        ['/srv/in/b.wav', { state: 'waiting', size: version.size, mtimeMs: version.mtimeMs }],
      ]),
    );
    expect(second.state).toBe('waiting');
    // Migrations 004 and 005: without these indexes the lookups above walk the whole history.
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]).map((row) => row.name);
    expect(indexes).toEqual(expect.arrayContaining(['jobs_recent', 'jobs_folder_sha256']));
  });

  it('maps the live versions of one directory, not of those below it or of look-alike siblings', () => {
    const store = new JobStore(openDatabase(join(tempDir(), 'state.db')));
    // Names beyond the BMP count as two UTF-16 units in JavaScript and one character in SQLite.
    const paths = ['/srv/in/a.wav', '/srv/in/🎵 album/b.wav', '/srv/in/🎵 album/stems/c.wav', '/srv/in/🎵 album2/d.wav', '/srv/in/🎵 album.wav'];
    for (const path of paths) store.createVersion({ ...version, path });
    const names = (directory: string) => [...store.versionsInDirectory('/srv/in', directory).keys()].sort();
    expect(names('/srv/in')).toEqual(['/srv/in/a.wav', '/srv/in/🎵 album.wav']);
    expect(names('/srv/in/🎵 album')).toEqual(['/srv/in/🎵 album/b.wav']);
    expect(names('/srv/in/🎵 album/stems')).toEqual(['/srv/in/🎵 album/stems/c.wav']);
    expect(names('/srv/in/empty')).toEqual([]);
    // A folder at the root of the file system: its prefix is '/' itself.
    store.createVersion({ ...version, folder: '/', path: '/top.wav' });
    store.createVersion({ ...version, folder: '/', path: '/srv/deep.wav' });
    expect([...store.versionsInDirectory('/', '/').keys()]).toEqual(['/top.wav']);
  });

  it('reads the first queued rows and the unfinished ones from indexes, without sorting or walking the history (migration 006)', () => {
    const db = openDatabase(join(tempDir(), 'state.db'));
    const store = new JobStore(db);
    const plan = (query: () => void) => {
      const prepare = db.prepare.bind(db);
      const details: string[] = [];
      const spy = vi.spyOn(db, 'prepare').mockImplementation((source: string) => {
        const parameters = Array.from(source.matchAll(/\?/g), () => null);
        details.push(...(prepare(`EXPLAIN QUERY PLAN ${source}`).all(...parameters) as { detail: string }[]).map((row) => row.detail));
        return prepare(source);
      });
      query();
      spy.mockRestore();
      return details.join(' | ');
    };
    expect(plan(() => store.inState('queued', 2))).toMatch(/USING (COVERING )?INDEX jobs_state_order \(state=\?\)$/);
    expect(plan(() => store.unfinished())).toMatch(/^SCAN jobs USING INDEX jobs_unfinished$/);
  });
});
