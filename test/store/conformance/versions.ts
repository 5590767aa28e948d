import { describe, expect, it } from 'vitest';
import { FINAL_STATES } from '../../../src/store/states.js';
import type { Suite } from '../conformance.js';
import { VERSION, rowIn, ids, moves } from './rows.js';

/** File versions: Session-Ids, replacing a version, and one live row per path. */
export function versionTests({ open }: Suite): void {
  describe('file versions', () => {
    it('gives each file version its own Session-Id, committed at creation, seen by the other holder and after reopening', async () => {
      const { store, other, reopen } = await open();
      const first = await store.createVersion(VERSION);
      expect(first).toMatchObject({ ...VERSION, state: 'waiting', current: true, attempts: 0, error: null, ownerPid: null });
      expect(first.sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(await other.current(VERSION.path)).toEqual(first);
      const big = await store.createVersion({ ...VERSION, path: '/srv/in/long session.wav', size: 5_000_000_000 });
      expect(big.sessionId).not.toBe(first.sessionId);
      await store.durable();
      const again = await reopen();
      expect(await again.current(VERSION.path)).toEqual(first);
      expect(await again.get(big.id)).toEqual(big);
    });

    it('reads nothing for a path never seen, and refuses a row that does not exist', async () => {
      const { store } = await open();
      expect(await store.current('/srv/in/never.wav')).toBeUndefined();
      await expect(store.get(9_999)).rejects.toThrow();
    });

    it('follows a version still waiting (its file still being written) instead of replacing it: one row, one Session-Id', async () => {
      const { store, events } = await open();
      const first = await store.createVersion(VERSION);
      // Another daemon saw the file a moment later, bigger: the row follows the file, as the intake's own sighting would.
      const grown = await store.createVersion({ ...VERSION, size: VERSION.size + 1, mtimeMs: VERSION.mtimeMs + 1 });
      expect(grown).toMatchObject({ id: first.id, sessionId: first.sessionId, state: 'waiting', size: VERSION.size + 1, mtimeMs: VERSION.mtimeMs + 1 });
      expect(ids(await store.list())).toEqual([first.id]);
      await store.durable();
      expect(events).toHaveLength(1);
    });

    for (const state of ['queued', 'uploading', 'retrying'] as const) {
      it(`retires a version still ${state} when a new one appears, keeping one current row per path`, async () => {
        const { store } = await open();
        const first = await rowIn(store, state, { name: 'mix.wav', nextAttemptAt: 0 });
        const second = await store.createVersion({ ...VERSION, size: 3_000_000 });
        expect(second).toMatchObject({ state: 'waiting', current: true, size: 3_000_000 });
        expect(second.sessionId).not.toBe(first.sessionId);
        expect(await store.get(first.id)).toMatchObject({ state: 'removed', current: false, error: 'replaced by a newer version of the file' });
        expect(await store.current(VERSION.path)).toEqual(second);
        expect(ids(await store.list())).toEqual([second.id]);
      });
    }

    it('finishes an uploaded predecessor as done when the file changes, since its bytes are stored', async () => {
      const { store } = await open();
      const first = await rowIn(store, 'uploaded', { name: 'mix.wav', sha256: 'abc' });
      await store.createVersion({ ...VERSION, size: 5 });
      expect(await store.get(first.id)).toMatchObject({ state: 'done', current: false });
    });

    it('lets a mastering or downloading predecessor carry on: its masters are still wanted', async () => {
      const { store } = await open();
      const mastering = await rowIn(store, 'mastering', { name: 'mastering.wav', nextAttemptAt: 1 });
      const downloading = await rowIn(store, 'downloading', { name: 'downloading.wav', nextAttemptAt: 2 });
      for (const job of [mastering, downloading]) {
        const next = await store.createVersion({ ...VERSION, path: job.path, mtimeMs: VERSION.mtimeMs + 1 });
        expect(await store.get(job.id)).toMatchObject({ state: job.state, current: false });
        expect((await store.current(job.path))?.id).toBe(next.id);
      }
      expect(ids(await store.dueSteps(Date.now(), 10))).toEqual([mastering.id, downloading.id]);
    });

    it('keeps a finished version as history when the file changes later', async () => {
      const { store } = await open();
      for (const state of FINAL_STATES) {
        const job = await rowIn(store, state);
        await store.createVersion({ ...VERSION, path: job.path, mtimeMs: VERSION.mtimeMs + 1 });
        expect(await store.get(job.id)).toMatchObject({ state, current: false });
      }
    });

    it('announces the retired version and the new one together, once committed', async () => {
      const { store, events } = await open();
      const first = await rowIn(store, 'queued', { name: 'mix.wav' });
      await store.durable();
      const before = events.length;
      const second = await store.createVersion({ ...VERSION, mtimeMs: VERSION.mtimeMs + 1 });
      await store.durable();
      expect(moves(events.slice(before))).toEqual([
        ['queued', 'removed'],
        [null, 'waiting'],
      ]);
      expect(ids(events.slice(before).map((event) => event.job))).toEqual([first.id, second.id]);
    });

    it('answers a version already current and on its way with its row, writing nothing', async () => {
      const { store, other, events } = await open();
      for (const state of ['waiting', 'queued', 'uploading', 'retrying', 'uploaded', 'mastering', 'downloading'] as const) {
        const live = await rowIn(store, state, { nextAttemptAt: 0 });
        await store.durable();
        const before = events.length;
        expect(await store.createVersion({ ...VERSION, path: live.path })).toEqual(live);
        expect(await other.createVersion({ ...VERSION, path: live.path })).toEqual(live);
        await store.durable();
        expect(events.length).toBe(before);
      }
      // A finished version is not on its way: the same file seen again is a new version.
      const done = await rowIn(store, 'done');
      const again = await store.createVersion({ ...VERSION, path: done.path });
      expect(again).toMatchObject({ state: 'waiting', current: true });
      expect(again.id).not.toBe(done.id);
    });

    it('gives two holders that see the same new file at once one live row', async () => {
      const { store, other } = await open();
      const [mine, theirs] = await Promise.all([store.createVersion(VERSION), other.createVersion(VERSION)]);
      expect(theirs).toEqual(mine);
      expect(ids(await store.list())).toEqual([mine.id]);
    });

    it('updates a waiting version that grew, and leaves one that is no longer waiting as it is', async () => {
      const { store } = await open();
      const waiting = await rowIn(store, 'waiting');
      await store.updateWaiting(waiting.id, 3_000_000, 1_700_000_111_000.5);
      expect(await store.get(waiting.id)).toMatchObject({ state: 'waiting', size: 3_000_000, mtimeMs: 1_700_000_111_000.5, sessionId: waiting.sessionId });
      const queued = await rowIn(store, 'queued');
      await store.updateWaiting(queued.id, 1, 1);
      expect(await store.get(queued.id)).toEqual(queued);
    });
  });
}
