import { describe, expect, it } from 'vitest';
import type { Job } from '../../../src/store/job.js';
import { IllegalTransitionError, type State } from '../../../src/store/states.js';
import type { JobStore } from '../../../src/store/store.js';
import type { Suite } from '../conformance.js';
import { SHORT_LEASE_MS, leaseLapse, VERSION, rowIn, rowsIn, ids, moves, movesOf } from './rows.js';

/** Upload claims and leases, filing outcomes, orphans, and which of several same-bytes files sends. */
export function uploadTests({ open }: Suite): void {
  describe('upload claims', () => {
    it('claims a queued row once, leasing it to this holder; a second claim by either holder gets nothing', async () => {
      const { store, other } = await open();
      const job = await rowIn(store, 'uploading');
      expect(job).toMatchObject({ state: 'uploading', attempts: 1 });
      await store.fileOutcome(job.id, 'retrying', { nextAttemptAt: 0, error: 'timed out', bytesSent: 10 });
      await store.transition(job.id, 'queued');
      const claimed = await store.claimUpload(job.id);
      expect(claimed?.job).toMatchObject({ id: job.id, state: 'uploading', attempts: 2, error: null, nextAttemptAt: null, bytesSent: 0, sessionId: job.sessionId });
      expect(claimed?.job.leaseUntil).toBeGreaterThan(Date.now());
      expect(claimed?.reservation).toBeUndefined();
      expect(await store.get(job.id)).toEqual(claimed?.job);
      expect(await store.claimUpload(job.id)).toBeUndefined();
      expect(await other.claimUpload(job.id)).toBeUndefined();
      expect(await store.claimUpload((await rowIn(store, 'waiting')).id)).toBeUndefined();
    });

    it('lets exactly one of two holders claiming a row at once have it', async () => {
      const { store, other } = await open();
      const job = await rowIn(store, 'queued');
      const claims = await Promise.all([store.claimUpload(job.id), other.claimUpload(job.id)]);
      expect(claims.filter((claim) => claim !== undefined)).toHaveLength(1);
      expect(await Promise.all([store.renewLease(job.id), other.renewLease(job.id)])).toEqual(claims.map((claim) => claim !== undefined));
    });

    it('takes the oldest queued row for upload, then the next, and none once none is left', async () => {
      const { store, other } = await open();
      await rowIn(store, 'waiting');
      await rowIn(store, 'retrying', { nextAttemptAt: 0 });
      const [older, newer] = await rowsIn(store, 'queued', ['older.wav', 'newer.wav']);
      const first = await store.claimNextUpload();
      expect(first).toMatchObject({ id: older!.id, state: 'uploading', attempts: 1, error: null, bytesSent: 0 });
      expect(first!.leaseUntil).toBeGreaterThan(Date.now());
      expect(await other.claimNextUpload()).toMatchObject({ id: newer!.id, state: 'uploading' });
      expect(await store.claimNextUpload()).toBeUndefined();
      expect(await other.claimNextUpload()).toBeUndefined();
      expect(await store.renewLease(older!.id)).toBe(true);
      expect(await other.renewLease(older!.id)).toBe(false);
      expect(await other.renewLease(newer!.id)).toBe(true);
      expect(ids(await store.inState('uploading'))).toEqual([older!.id, newer!.id]);
    });

    it('lets two holders taking the next upload at once take different rows', async () => {
      const { store, other } = await open();
      const queued = await rowsIn(store, 'queued', ['a.wav', 'b.wav', 'c.wav']);
      const taken = await Promise.all([store.claimNextUpload(), other.claimNextUpload(), store.claimNextUpload(), other.claimNextUpload()]);
      expect(taken.filter((job) => job === undefined)).toHaveLength(1);
      expect(new Set(taken.map((job) => job?.id).filter((id) => id !== undefined))).toEqual(new Set(ids(queued)));
    });

    it('renews only its own claim, and no longer once the outcome is filed', async () => {
      const { store, other } = await open();
      const job = await rowIn(store, 'uploading');
      expect(await store.renewLease(job.id)).toBe(true);
      expect((await store.get(job.id)).leaseUntil).toBeGreaterThanOrEqual(job.leaseUntil!);
      expect(await other.renewLease(job.id)).toBe(false);
      await store.fileOutcome(job.id, 'uploaded', { sha256: 'abc' });
      expect(await store.renewLease(job.id)).toBe(false);
    });

    it('files the outcome of its own attempt, with the moves `then` makes of the filed row, in one commit', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'uploading');
      let filedState: State | undefined;
      const done = await store.fileOutcome(job.id, 'uploaded', { sha256: 'abc', md5: 'def', bytesSent: VERSION.size }, (filed) => {
        filedState = filed.state;
        return [{ to: 'done', followUps: [{ kind: 'after-upload', plan: { action: 'delete' } }] }];
      });
      expect(filedState).toBe('uploaded');
      expect(done).toMatchObject({ state: 'done', sha256: 'abc', md5: 'def', bytesSent: VERSION.size });
      expect(await store.get(job.id)).toEqual(done);
      expect(await store.followUps(job.id)).toMatchObject([{ kind: 'after-upload', plan: { action: 'delete' } }]);
      const plain = await rowIn(store, 'uploading');
      expect(await store.fileOutcome(plain.id, 'retrying', { nextAttemptAt: 7 }, () => [])).toMatchObject({ state: 'retrying', nextAttemptAt: 7 });
      await store.durable();
      expect(movesOf(events, job.id).slice(-2)).toEqual([
        ['uploading', 'uploaded'],
        ['uploaded', 'done'],
      ]);
      expect(movesOf(events, plain.id).at(-1)).toEqual(['uploading', 'retrying']);
    });

    it('files nothing when `then` fails: the row stays this holder\'s upload', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'uploading');
      await store.durable();
      const before = events.length;
      await expect(store.fileOutcome(job.id, 'uploaded', { sha256: 'abc' }, () => [{ to: 'retrying' }])).rejects.toThrow(IllegalTransitionError);
      await expect(
        store.fileOutcome(job.id, 'uploaded', { sha256: 'abc' }, () => {
          throw new Error('plan unreadable');
        }),
      ).rejects.toThrow('plan unreadable');
      expect(await store.get(job.id)).toEqual(job);
      expect(await store.followUps(job.id)).toEqual([]);
      expect(await store.renewLease(job.id)).toBe(true);
      await store.durable();
      expect(events.length).toBe(before);
    });

    it('files nothing for a row replaced meanwhile, or claimed by the other holder', async () => {
      const { store, other } = await open();
      const replaced = await rowIn(store, 'uploading');
      await store.createVersion({ ...VERSION, path: replaced.path, size: 1 });
      const theirs = await rowIn(store, 'uploading', { claimedBy: other });
      let decided = false;
      const then = () => ((decided = true), []);
      expect(await store.fileOutcome(replaced.id, 'uploaded', { sha256: 'abc' }, then)).toBeUndefined();
      expect(await store.fileOutcome(theirs.id, 'uploaded', { sha256: 'abc' }, then)).toBeUndefined();
      expect(decided).toBe(false);
      expect((await store.get(replaced.id)).state).toBe('removed');
      expect(await store.get(theirs.id)).toEqual(theirs);
      expect(await other.fileOutcome(theirs.id, 'uploaded', { sha256: 'abc' })).toMatchObject({ state: 'uploaded' });
    });

    it('loses a claim whose lease lapsed to the other holder: no renewal, no reservation, no outcome', async () => {
      const { store, other } = await open(SHORT_LEASE_MS);
      const job = await rowIn(store, 'uploading');
      await leaseLapse();
      await other.releaseOrphanedUploads(() => false);
      expect(await other.get(job.id)).toMatchObject({ state: 'retrying', sessionId: job.sessionId });
      await other.transition(job.id, 'queued');
      const taken = await other.claimUpload(job.id);
      expect(taken?.job).toMatchObject({ state: 'uploading', attempts: 2 });
      expect(await store.renewLease(job.id)).toBe(false);
      expect(await store.reserveUpload(job, 'head')).toEqual({ kind: 'lost' });
      expect(await store.fileOutcome(job.id, 'uploaded', { sha256: 'abc' })).toBeUndefined();
      expect(await store.get(job.id)).toEqual(taken?.job);
      expect(await other.renewLease(job.id)).toBe(true);
      expect(await other.fileOutcome(job.id, 'uploaded', { sha256: 'abc' })).toMatchObject({ state: 'uploaded' });
    });

    it('resumes orphaned uploads as due retries with their own Session-Id, and leaves running and live ones alone', async () => {
      const { store, other, events } = await open();
      const running = await rowIn(store, 'uploading');
      // Ours, but no attempt of this holder runs it: left by an earlier life of the same holder.
      const orphan = await rowIn(store, 'uploading');
      const live = await rowIn(store, 'uploading', { claimedBy: other });
      const before = Date.now();
      await store.releaseOrphanedUploads((id) => id === running.id);
      expect(await store.get(running.id)).toEqual(running);
      expect(await store.get(live.id)).toEqual(live);
      const resumed = await store.get(orphan.id);
      expect(resumed).toMatchObject({ state: 'retrying', sessionId: orphan.sessionId, error: expect.stringMatching(/interrupted/) });
      expect(resumed.nextAttemptAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(ids(await store.dueRetries(Date.now()))).toEqual([orphan.id]);
      await store.durable();
      expect(moves(events).at(-1)).toEqual(['uploading', 'retrying']);
    });

    it('resumes another holder\'s upload once its lease has lapsed', async () => {
      const { store, other } = await open(SHORT_LEASE_MS);
      const job = await rowIn(store, 'uploading', { claimedBy: other });
      await leaseLapse();
      await store.releaseOrphanedUploads(() => false);
      expect(await store.get(job.id)).toMatchObject({ state: 'retrying', sessionId: job.sessionId, error: expect.stringMatching(/interrupted/) });
      expect(await other.renewLease(job.id)).toBe(false);
    });
  });

  describe('reserving the bytes of an upload', () => {
    const claim = async (holder: JobStore, job: Job, head?: string) => {
      const claimed = await holder.claimUpload(job.id, head);
      if (!claimed) throw new Error(`could not claim ${job.path}`);
      return claimed;
    };

    it('lets one of several same-size files with the same beginning send, whichever holder claimed it; the others wait for it', async () => {
      const { store, other } = await open();
      const [first, second, odd] = await rowsIn(store, 'queued', ['first.wav', 'second.wav', 'odd.wav']);
      const sender = await claim(other, second!, 'head');
      expect(sender.reservation).toEqual({ kind: 'send' });
      const waiter = await claim(store, first!, 'head');
      expect(waiter.reservation).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: second!.id }) });
      // Same size, another beginning: not the same bytes, so nothing to wait for.
      expect((await claim(store, odd!, 'other head')).reservation).toEqual({ kind: 'send' });
      // The sender's attempt is cut short, maybe after its last byte: claimed again, it holds its beginning at once, and sends again.
      await other.fileOutcome(second!.id, 'retrying', { nextAttemptAt: 0 });
      await store.fileOutcome(first!.id, 'retrying', { nextAttemptAt: 0 });
      for (const row of [first!, second!]) await store.transition(row.id, 'queued');
      // Claimed before the twin that was told to wait, older as it is.
      const again = await other.claimNextUpload();
      expect(again?.id).toBe(second!.id);
      const twin = await store.claimNextUpload();
      expect(await store.reserveUpload(twin!, 'head')).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: second!.id }) });
      expect(await other.reserveUpload(again!, 'head')).toEqual({ kind: 'send' });
    });

    it('never lets two rows that each kept a beginning wait for each other', async () => {
      const { store, other } = await open();
      const [first, second] = await rowsIn(store, 'queued', ['first.wav', 'second.wav']);
      // The first sent, failed and was re-armed (`retry`); the second sent while the first was failed: both kept the beginning.
      expect((await claim(store, first!, 'head')).reservation).toEqual({ kind: 'send' });
      await store.fileOutcome(first!.id, 'failed', { error: 'storage refused it' });
      expect((await claim(store, second!, 'head')).reservation).toEqual({ kind: 'send' });
      await store.fileOutcome(second!.id, 'retrying', { nextAttemptAt: 0 });
      await store.transition(second!.id, 'queued');
      await store.transition(first!.id, 'queued');
      const mine = await claim(store, first!);
      const theirs = await claim(other, second!);
      const answers = [await store.reserveUpload(mine.job, 'head'), await other.reserveUpload(theirs.job, 'head')];
      expect(answers.map((answer) => answer.kind)).toEqual(['wait', 'send']);
    });

    it('makes a twin wait for a row whose attempt was cut short, even while that row waits for its retry', async () => {
      const { store, other } = await open();
      const [cut, twin] = await rowsIn(store, 'queued', ['cut short.wav', 'twin.wav']);
      expect((await claim(store, cut!, 'head')).reservation).toEqual({ kind: 'send' });
      // A reset after the last byte: storage may hold it, under this row's Session-Id.
      await store.fileOutcome(cut!.id, 'retrying', { nextAttemptAt: Date.now() + 60_000.5 });
      expect((await claim(other, twin!, 'head')).reservation).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: cut!.id }) });
    });

    it('asks for the whole hash after a stored upload of the same size and beginning, then finds it in the same folder only', async () => {
      const { store } = await open();
      const original = await rowIn(store, 'mastering', { name: 'original.wav', sha256: 'abc', headSha256: 'head', nextAttemptAt: 0 });
      const copy = await claim(store, await rowIn(store, 'queued', { name: 'copy.wav' }), 'head');
      expect(copy.reservation).toEqual({ kind: 'hash' });
      // Stored while its masters are still being made: the bytes are there.
      expect(await store.reserveUpload(copy.job, 'head', 'abc')).toEqual({ kind: 'duplicate', original: expect.objectContaining({ id: original.id }) });
      expect(await store.reserveUpload(copy.job, 'head', 'another sha256')).toEqual({ kind: 'send' });
      // Neither the stored upload nor the copy now sending the same beginning is another folder's business.
      const elsewhere = await claim(store, await rowIn(store, 'queued', { folder: '/srv/other', name: 'copy.wav' }), 'head');
      expect(elsewhere.reservation).toEqual({ kind: 'send' });
      expect(await store.reserveUpload(elsewhere.job, 'head', 'abc')).toEqual({ kind: 'send' });
      // Nor is a file of another size.
      const smaller = await claim(store, await rowIn(store, 'queued', { name: 'smaller.wav', size: VERSION.size - 1 }), 'head');
      expect(smaller.reservation).toEqual({ kind: 'send' });
    });

    it('points a duplicate at the original, never at another duplicate', async () => {
      const { store } = await open();
      // The first copy's row is older than the original's: only its being a duplicate keeps it from being pointed at.
      const firstCopyQueued = await rowIn(store, 'queued', { name: 'copy 1.wav' });
      const original = await rowIn(store, 'done', { name: 'original.wav', sha256: 'abc', headSha256: 'head' });
      const firstCopy = await claim(store, firstCopyQueued, 'head');
      await store.fileOutcome(firstCopy.job.id, 'uploaded', { sha256: 'abc', headSha256: 'head', duplicateOf: original.id });
      const secondCopy = await claim(store, await rowIn(store, 'queued', { name: 'copy 2.wav' }), 'head');
      expect(await store.reserveUpload(secondCopy.job, 'head', 'abc')).toEqual({ kind: 'duplicate', original: expect.objectContaining({ id: original.id }) });
    });

    it('makes a file that is no stored duplicate wait for a holder all the same; a failed row holds nothing', async () => {
      const { store } = await open();
      await rowIn(store, 'done', { name: 'original.wav', sha256: 'stored bytes', headSha256: 'head' });
      const [holder, copy, gaveUp, after] = await rowsIn(store, 'uploading', ['holder.wav', 'copy.wav', 'gave up.wav', 'after.wav']);
      expect(await store.reserveUpload(holder!, 'head', 'other bytes')).toEqual({ kind: 'send' });
      expect(await store.reserveUpload(copy!, 'head', 'other bytes')).toEqual({ kind: 'wait', holder: expect.objectContaining({ id: holder!.id }) });
      expect(await store.reserveUpload(gaveUp!, 'second head')).toEqual({ kind: 'send' });
      await store.fileOutcome(gaveUp!.id, 'failed', { error: 'storage refused it' });
      expect(await store.reserveUpload(after!, 'second head')).toEqual({ kind: 'send' });
    });

    it('answers lost for a row that is no longer this holder\'s upload', async () => {
      const { store, other } = await open();
      const released = await rowIn(store, 'uploading');
      await store.releaseOrphanedUploads(() => false);
      expect(await store.reserveUpload(released, 'head')).toEqual({ kind: 'lost' });
      expect((await store.get(released.id)).state).toBe('retrying');
      const theirs = await rowIn(store, 'uploading', { claimedBy: other });
      expect(await store.reserveUpload(theirs, 'head')).toEqual({ kind: 'lost' });
      expect(await other.reserveUpload(theirs, 'head')).toEqual({ kind: 'send' });
    });
  });
}
