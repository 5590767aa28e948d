import { describe, expect, it } from 'vitest';
import type { Job } from '../../../src/store/job.js';
import { FINAL_STATES, STATES } from '../../../src/store/states.js';
import type { Suite } from '../conformance.js';
import { tick, VERSION, rowIn, rowsIn, ids, onDone } from './rows.js';

/** What the scheduler, the scan, `status` and `list` read, and what the daemon tells other processes. */
export function readTests({ open }: Suite): void {
  describe('downloads', () => {
    it('records the results of a job, lists them by name, and forgets one no longer on disk', async () => {
      const { store } = await open();
      const job = await rowIn(store, 'downloading', { nextAttemptAt: 0 });
      const another = await rowIn(store, 'downloading', { nextAttemptAt: 0 });
      const result = (name: string) => ({ name, path: `/srv/in/masters/${name}`, bytes: 5_000_000_000, sha256: `sha of ${name}` });
      await store.recordDownload(job.id, result('mix (warm).wav'));
      await store.recordDownload(job.id, result('mix (bright).wav'));
      expect(await store.downloads(job.id)).toEqual([result('mix (bright).wav'), result('mix (warm).wav')]);
      expect(await store.downloads(another.id)).toEqual([]);
      await store.forgetDownload(job.id, 'mix (bright).wav');
      expect(await store.downloads(job.id)).toEqual([result('mix (warm).wav')]);
    });
  });

  describe('reads', () => {
    it('maps the live versions of one directory, not of those below it or of look-alike siblings', async () => {
      const { store } = await open();
      // Names beyond the BMP count as two UTF-16 units in JavaScript and one character in SQL.
      const paths = ['/srv/in/a.wav', '/srv/in/🎵 album/b.wav', '/srv/in/🎵 album/stems/c.wav', '/srv/in/🎵 album2/d.wav', '/srv/in/🎵 album.wav'];
      for (const path of paths) await store.createVersion({ ...VERSION, path });
      await store.createVersion({ ...VERSION, folder: '/srv/other', path: '/srv/other/e.wav' });
      const replaced = await store.createVersion({ ...VERSION, path: '/srv/in/a.wav', size: 7 });
      const names = async (directory: string) => [...(await store.versionsInDirectory('/srv/in', directory)).keys()].sort();
      expect(await names('/srv/in')).toEqual(['/srv/in/a.wav', '/srv/in/🎵 album.wav']);
      expect(await names('/srv/in/🎵 album')).toEqual(['/srv/in/🎵 album/b.wav']);
      expect(await names('/srv/in/🎵 album/stems')).toEqual(['/srv/in/🎵 album/stems/c.wav']);
      expect(await names('/srv/in/empty')).toEqual([]);
      expect((await store.versionsInDirectory('/srv/in', '/srv/in')).get(replaced.path)).toEqual({ state: 'waiting', size: 7, mtimeMs: VERSION.mtimeMs });
      expect([...(await store.versionsInDirectory('/srv/other', '/srv/other')).keys()]).toEqual(['/srv/other/e.wav']);
    });

    it('reads the first queued rows in the order their versions appeared', async () => {
      const { store } = await open();
      const [a, b, c] = await rowsIn(store, 'waiting', ['a.wav', 'b.wav', 'c.wav']);
      await rowIn(store, 'retrying', { nextAttemptAt: 0 });
      for (const job of [b!, c!, a!]) {
        await tick();
        await store.transition(job.id, 'queued');
      }
      expect(await store.queuedIds(10)).toEqual([a!.id, b!.id, c!.id]);
      expect(await store.queuedIds(2)).toEqual([a!.id, b!.id]);
    });

    it('finds the rows in a state in the order they appeared, up to a limit', async () => {
      const { store } = await open();
      const first = await rowIn(store, 'failed');
      await rowIn(store, 'done');
      const second = await rowIn(store, 'failed');
      expect(ids(await store.inState('failed'))).toEqual([first.id, second.id]);
      expect(ids(await store.inState('failed', 1))).toEqual([first.id]);
      expect(await store.inState('rejected')).toEqual([]);
    });

    it('lists the live versions not settled into a final state', async () => {
      const { store } = await open();
      const unsettled: Job[] = [];
      for (const state of STATES) {
        const job = await rowIn(store, state, { nextAttemptAt: 0 });
        if (!FINAL_STATES.includes(state)) unsettled.push(job);
      }
      const replaced = await rowIn(store, 'queued');
      await store.createVersion({ ...VERSION, path: replaced.path, size: 1 });
      // Mastered still, but no longer the live version of its file.
      const mastered = await rowIn(store, 'mastering', { nextAttemptAt: 0 });
      await store.transition((await store.createVersion({ ...VERSION, path: mastered.path, size: 1 })).id, 'rejected');
      const unfinished = await store.unfinished();
      expect(ids(unfinished)).toEqual([...ids(unsettled), (await store.current(replaced.path))!.id]);
      expect(unfinished.every((job) => job.current)).toBe(true);
    });

    it('finds due retries, soonest first', async () => {
      const { store } = await open();
      const later = await rowIn(store, 'retrying', { nextAttemptAt: 5_000 });
      const sooner = await rowIn(store, 'retrying', { nextAttemptAt: 2_000 });
      await rowIn(store, 'mastering', { nextAttemptAt: 1 });
      expect(await store.dueRetries(1_999)).toEqual([]);
      expect(ids(await store.dueRetries(5_000))).toEqual([sooner.id, later.id]);
    });

    it('says when the next retry or step is due, and null when nothing is', async () => {
      const { store } = await open();
      expect(await store.nextDueAt(Date.now())).toBeNull();
      await rowIn(store, 'waiting');
      await rowIn(store, 'failed');
      expect(await store.nextDueAt()).toBeNull();
      await rowIn(store, 'retrying', { nextAttemptAt: 9_000 });
      expect(await store.nextDueAt()).toBe(9_000);
      await rowIn(store, 'downloading', { nextAttemptAt: 7_000 });
      expect(await store.nextDueAt()).toBe(7_000);
      await rowIn(store, 'retrying', { nextAttemptAt: 5_000 });
      expect(await store.nextDueAt(Date.now())).toBe(5_000);
    });

    it('says a follow-up the other holder runs is due no sooner than its claim lapses', async () => {
      const { store, other } = await open();
      const job = await rowIn(store, 'uploaded');
      await store.transition(job.id, 'done', {}, [onDone()]);
      const theirs = await other.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
      expect(await store.nextDueAt(Date.now())).toBe(theirs!.leaseUntil);
    });

    it('counts the live versions in every state', async () => {
      const { store } = await open();
      const empty = await store.counts();
      expect(empty).toEqual(Object.fromEntries(STATES.map((state) => [state, 0])));
      await rowIn(store, 'retrying', { nextAttemptAt: 0 });
      await rowIn(store, 'queued');
      const replaced = await rowIn(store, 'queued');
      await store.createVersion({ ...VERSION, path: replaced.path, size: 1 });
      expect(await store.counts()).toEqual({ ...empty, retrying: 1, queued: 1, waiting: 1 });
    });

    it('lists the live versions newest first, of one state or all', async () => {
      const { store } = await open();
      const first = await rowIn(store, 'done');
      const second = await rowIn(store, 'waiting');
      const replaced = await rowIn(store, 'done');
      const third = await store.createVersion({ ...VERSION, path: replaced.path });
      const fourth = await rowIn(store, 'done');
      expect(ids(await store.list())).toEqual([fourth.id, third.id, second.id, first.id]);
      expect(ids(await store.list('done'))).toEqual([fourth.id, first.id]);
      expect(await store.list('failed')).toEqual([]);
    });

    it('lists the latest changes first', async () => {
      const { store } = await open();
      const a = await rowIn(store, 'waiting', { name: 'a.wav' });
      await tick();
      await rowIn(store, 'waiting', { name: 'b.wav' });
      await tick();
      const c = await rowIn(store, 'waiting', { folder: '/srv/other', name: 'c.wav' });
      await tick();
      await store.transition(a.id, 'queued');
      expect(ids(await store.recent(2))).toEqual([a.id, c.id]);
    });

    it('counts the files done since a moment', async () => {
      const { store } = await open();
      await rowIn(store, 'done');
      const doneLater = await rowIn(store, 'uploaded');
      await tick();
      const since = Date.now();
      await tick();
      await store.transition(doneLater.id, 'done');
      await rowIn(store, 'failed');
      expect(await store.doneSince(since)).toBe(1);
      expect(await store.doneSince(Date.now() + 1_000)).toBe(0);
    });

    it('finds the oldest version still on its way to storage', async () => {
      const { store } = await open();
      expect(await store.oldestPending()).toBeUndefined();
      await rowIn(store, 'done');
      await tick();
      const oldest = await rowIn(store, 'retrying', { nextAttemptAt: 0 });
      await tick();
      await rowIn(store, 'queued');
      await rowIn(store, 'waiting');
      expect((await store.oldestPending())?.id).toBe(oldest.id);
    });

    it('counts the jobs whose masters have waited to be downloaded since before a moment', async () => {
      const { store } = await open();
      const before = Date.now() - 1;
      await rowIn(store, 'downloading', { nextAttemptAt: 0 });
      await rowIn(store, 'mastering', { nextAttemptAt: 0 });
      expect(await store.downloadsWaitingSince(before)).toBe(0);
      expect(await store.downloadsWaitingSince(Date.now() + 1_000)).toBe(1);
    });
  });

  describe('what the daemon tells other processes', () => {
    it('keeps the pause, the folder states and the bandwidth caps for the other processes of the machine to read', async () => {
      const { store, other } = await open();
      expect(await store.paused()).toBeNull();
      expect(await store.folderStates()).toEqual([]);
      expect(await store.bandwidth()).toBeNull();
      const folders = [
        { path: '/srv/in', problem: { problem: 'unmounted' as const, since: 5 } },
        { path: '/srv/other', problem: undefined },
      ];
      const caps = { limitBytesPerSecond: 1_000_000, window: { from: '22:00', to: '06:00' } };
      await store.setPaused({ reason: 'key rejected', since: 1 });
      await store.setFolderStates(folders);
      await store.setBandwidth(caps);
      expect(await other.paused()).toEqual({ reason: 'key rejected', since: 1 });
      expect(await other.folderStates()).toEqual(folders);
      expect(await other.bandwidth()).toEqual(caps);
      await store.setPaused(null);
      await store.setBandwidth(null);
      expect(await other.paused()).toBeNull();
      expect(await other.bandwidth()).toBeNull();
    });

    it('tells every holder which daemons beat lately, and how long ago', async () => {
      const { store, other } = await open();
      expect(await other.heartbeats()).toEqual([]);
      await store.beat();
      const [heard, ...more] = await other.heartbeats();
      expect(more).toEqual([]);
      expect(heard).toEqual({ host: expect.any(String), pid: expect.any(Number), startedAt: expect.any(Number), silentMs: expect.any(Number) });
      expect(heard!.silentMs).toBeGreaterThanOrEqual(0);
      expect(heard!.silentMs).toBeLessThan(5_000);
      // Beating again keeps the start.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await store.beat();
      expect((await other.heartbeats())[0]?.startedAt).toBe(heard!.startedAt);
    });

    it('says when its commits are durable', async () => {
      const { store } = await open();
      await expect(store.durable()).resolves.toBeUndefined();
      await store.createVersion(VERSION);
      await expect(store.durable()).resolves.toBeUndefined();
    });
  });
}
