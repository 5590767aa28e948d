import { renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/db.js';
import { isStoreFailure } from '../../src/store/failures.js';
import { GroupCommit, StoreSyncError } from '../../src/store/groupCommit.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import type { TransitionEvent } from '../../src/store/job.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();

/** A GroupCommit whose syncs the test counts, holds and fails; `commit()` stands for a write to the connection. */
function groupWithHeldSyncs(announceWithinMs = 5) {
  let changes = 0;
  const syncs: { file: string; finish: (error?: Error) => void }[] = [];
  const group = new GroupCommit({
    walFile: '/srv/state/state.db-wal',
    windowMs: 1,
    announceWithinMs,
    changes: () => changes,
    sync: (file) =>
      new Promise<void>((resolve, reject) => {
        syncs.push({ file, finish: (error) => (error ? reject(error) : resolve()) });
      }),
  });
  return {
    group,
    syncs,
    commit: () => {
      changes++;
    },
    /** Waits until `count` syncs have started. */
    syncsStarted: async (count: number) => {
      for (let i = 0; i < 200 && syncs.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(syncs).toHaveLength(count);
    },
  };
}

/** Whether the promise has settled, without waiting for it. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('GroupCommit', () => {
  it('makes the commits of one window durable with one sync, and announces them only after it', async () => {
    const { group, syncs, commit, syncsStarted } = groupWithHeldSyncs();
    const announced: number[] = [];
    const waits = [1, 2, 3].map((n) => {
      commit();
      group.whenDurable(() => announced.push(n));
      return group.durable();
    });
    await syncsStarted(1);
    expect(syncs[0]!.file).toBe('/srv/state/state.db-wal');
    expect(announced).toEqual([]);
    expect(await settled(waits[2]!)).toBe(false);
    syncs[0]!.finish();
    await Promise.all(waits);
    expect(announced).toEqual([1, 2, 3]);
    expect(syncs).toHaveLength(1);
  });

  it('lets a commit nobody waits for wait for company, until someone waits for it', async () => {
    const { group, syncs, commit, syncsStarted } = groupWithHeldSyncs(60_000);
    const announced: string[] = [];
    commit();
    group.whenDurable(() => announced.push('queued'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(syncs).toHaveLength(0);
    commit();
    const claim = group.durable();
    await syncsStarted(1);
    syncs[0]!.finish();
    await claim;
    expect(announced).toEqual(['queued']);
  });

  it('covers commits made during a sync with exactly one more, started when it ends', async () => {
    const { group, syncs, commit, syncsStarted } = groupWithHeldSyncs();
    commit();
    const first = group.durable();
    await syncsStarted(1);
    commit();
    const second = group.durable();
    commit();
    const third = group.durable();
    syncs[0]!.finish();
    await first;
    expect(await settled(second)).toBe(false);
    await syncsStarted(2);
    syncs[1]!.finish();
    await Promise.all([second, third]);
    expect(syncs).toHaveLength(2);
  });

  it('waits for nothing when nothing was written since the last sync', async () => {
    const { group, syncs, commit, syncsStarted } = groupWithHeldSyncs();
    const announced: string[] = [];
    group.whenDurable(() => announced.push('at once'));
    expect(announced).toEqual(['at once']);
    await group.durable();
    commit();
    const written = group.durable();
    await syncsStarted(1);
    // A wait that begins during the sync, with no write since it began, shares it.
    const alongside = group.durable();
    syncs[0]!.finish();
    await Promise.all([written, alongside]);
    await group.durable();
    expect(syncs).toHaveLength(1);
  });

  it('after a failed sync, announces nothing, syncs no more and reports the failure to every later wait', async () => {
    const { group, syncs, commit, syncsStarted } = groupWithHeldSyncs();
    const announced: string[] = [];
    commit();
    group.whenDurable(() => announced.push('lost'));
    const waiting = group.durable();
    await syncsStarted(1);
    syncs[0]!.finish(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    await expect(waiting).rejects.toThrow(StoreSyncError);
    await expect(waiting).rejects.toThrow(/cannot flush the state database \/srv\/state\/state\.db-wal to disk: EIO: i\/o error, fsync \(check the disk under state\.database\)/);
    // A failed fsync may have dropped the pages it was to write: a later success would prove nothing.
    commit();
    await expect(group.durable()).rejects.toBe(group.failure);
    expect(syncs).toHaveLength(1);
    expect(announced).toEqual([]);
    expect(isStoreFailure(group.failure)).toBe(true);
  });
});

describe('JobStore with group commit', () => {
  const version = { folder: '/srv/in', path: '/srv/in/mix.wav', size: 2_000_000, mtimeMs: 1_700_000_000_123 };

  function openGrouped(events: TransitionEvent[] = []) {
    const file = join(tempDir(), 'state.db');
    const db = openDatabase(file);
    return { file, db, store: new SqliteJobStore(db, { groupCommit: { windowMs: 1, announceWithinMs: 5 }, onTransition: (event) => events.push(event) }) };
  }

  it('commits without a sync of its own (synchronous=NORMAL) and announces a transition once its WAL is synced', async () => {
    const events: TransitionEvent[] = [];
    const { file, db, store } = openGrouped(events);
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    const job = await store.createVersion(version);
    await store.transition(job.id, 'queued');
    // Committed: readable at once, by this connection and any other.
    expect((await store.get(job.id)).state).toBe('queued');
    const reader = openDatabase(file);
    expect((await new SqliteJobStore(reader).get(job.id)).state).toBe('queued');
    reader.close();
    expect(events).toEqual([]);
    await store.durable();
    expect(events.map((event) => event.job.state)).toEqual(['waiting', 'queued']);
    db.close();
  });

  it('refuses every commit once the WAL cannot be synced, as a store failure naming the file', async () => {
    const { file, db, store } = openGrouped();
    const job = await store.createVersion(version);
    await store.durable();
    // SQLite keeps writing through its open descriptor; the name the sync opens now loops.
    renameSync(`${file}-wal`, `${file}-wal.moved`);
    symlinkSync(`${file}-wal`, `${file}-wal`);
    await store.transition(job.id, 'queued');
    const failure = await store.durable().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreSyncError);
    expect(isStoreFailure(failure)).toBe(true);
    expect((failure as Error).message).toContain(`${file}-wal`);
    await expect(store.claimUpload(job.id)).rejects.toBe(failure);
    expect((await store.get(job.id)).state).toBe('queued');
    db.close();
  });

  it('refuses the writes that are one statement too, once the WAL cannot be synced', async () => {
    const { file, db, store } = openGrouped();
    const job = await store.createVersion(version);
    await store.transition(job.id, 'queued');
    await store.claimUpload(job.id);
    await store.durable();
    renameSync(`${file}-wal`, `${file}-wal.moved`);
    symlinkSync(`${file}-wal`, `${file}-wal`);
    await store.recordProgress(job.id, 1);
    const failure = await store.durable().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreSyncError);
    try {
      await expect(store.renewLease(job.id)).rejects.toBe(failure);
      await expect(store.annotate(job.id, 'a note')).rejects.toBe(failure);
      await expect(store.setPaused({ reason: 'key rejected', since: 1 })).rejects.toBe(failure);
    } finally {
      db.close();
    }
  });
});
