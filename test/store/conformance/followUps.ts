import { describe, expect, it } from 'vitest';
import type { FollowUp } from '../../../src/store/job.js';
import { IllegalTransitionError } from '../../../src/store/states.js';
import type { JobStore } from '../../../src/store/store.js';
import type { Suite } from '../conformance.js';
import { SHORT_LEASE_MS, leaseLapse, tick, rowIn, onDone } from './rows.js';

/** Follow-ups: made due by moves, claimed, finished or postponed, between two holders. */
export function followUpTests({ open }: Suite): void {
  describe('follow-ups', () => {
    /** A stored upload moved on to done, with an on-done follow-up due by that move. */
    const withFollowUp = async (store: JobStore, plan?: unknown) => {
      const job = await rowIn(store, 'uploaded', { sha256: 'abc' });
      await store.transition(job.id, 'done', {}, [onDone(plan)]);
      return job;
    };

    it('is made due by the move that makes it due, in its commit, and not by a move that fails', async () => {
      const { store, other } = await open();
      const before = Date.now();
      const job = await withFollowUp(store, { command: ['notify', 'done'] });
      const [followUp] = await store.followUps(job.id);
      expect(followUp).toEqual({ jobId: job.id, kind: 'on-done', plan: { command: ['notify', 'done'] }, dueAt: expect.any(Number), failures: 0, error: null, ownerPid: null, leaseUntil: null });
      expect(followUp!.dueAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(await store.dueFollowUps(Date.now(), 10)).toEqual([followUp]);
      expect(await other.followUps(job.id)).toEqual([followUp]);
      const waiting = await rowIn(store, 'waiting');
      await expect(store.transition(waiting.id, 'done', {}, [onDone()])).rejects.toThrow(IllegalTransitionError);
      expect(await store.followUps(waiting.id)).toEqual([]);
      const stored = await rowIn(store, 'uploaded');
      await store.moveIf(stored.id, () => [{ to: 'done', followUps: [{ kind: 'after-upload', plan: null }, onDone()] }]);
      expect((await store.followUps(stored.id)).map((due) => [due.kind, due.plan])).toEqual([
        ['after-upload', null],
        ['on-done', { command: ['notify'] }],
      ]);
    });

    it('replaces a pending follow-up of the same kind with a new one, which the old one\'s run cannot finish', async () => {
      const { store, other } = await open();
      const job = await withFollowUp(store, { version: 1 });
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true })).toBeDefined();
      await store.postponeFollowUp(job.id, 'on-done', { dueAt: Date.now() + 3_600_000, failures: 2, error: 'hook exited 1' });
      // The old plan runs again in the other holder while the row is mastered again (`upload --master` of a done file).
      expect(await other.claimFollowUp(job.id, 'on-done', { mustBeDue: false })).toBeDefined();
      await store.transition(job.id, 'mastering', { nextAttemptAt: 0 });
      await store.transition(job.id, 'downloading', { nextAttemptAt: 0 });
      await store.transition(job.id, 'done', {}, [onDone({ version: 2 })]);
      const [followUp] = await store.followUps(job.id);
      expect(followUp).toMatchObject({ plan: { version: 2 }, failures: 0, error: null, ownerPid: null, leaseUntil: null });
      expect(followUp!.dueAt).toBeLessThanOrEqual(Date.now() + 1_000);
      await other.finishFollowUp(job.id, 'on-done');
      expect(await store.followUps(job.id)).toEqual([followUp]);
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true })).toMatchObject({ plan: { version: 2 } });
    });

    it('claims a pending follow-up once due, renews its own claim, and finds none to claim when none is pending', async () => {
      const { store } = await open();
      const job = await withFollowUp(store);
      const claimed = await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
      expect(claimed).toMatchObject({ jobId: job.id, kind: 'on-done', plan: { command: ['notify'] } });
      expect(claimed!.leaseUntil).toBeGreaterThan(Date.now());
      expect(await store.followUps(job.id)).toEqual([claimed]);
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: false })).toBeDefined();
      expect(await store.claimFollowUp(job.id, 'after-upload', { mustBeDue: false })).toBeUndefined();
      await store.postponeFollowUp(job.id, 'on-done', { dueAt: Date.now() + 3_600_000 });
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true })).toBeUndefined();
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: false })).toBeDefined();
      await store.finishFollowUp(job.id, 'on-done');
      expect(await store.followUps(job.id)).toEqual([]);
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: false })).toBeUndefined();
    });

    it('refuses a follow-up while the other holder\'s claim on it is fresh, and leaves it to them', async () => {
      const { store, other } = await open();
      const job = await withFollowUp(store);
      const theirs = await other.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
      expect(theirs).toBeDefined();
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true })).toBeUndefined();
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: false })).toBeUndefined();
      expect(await store.dueFollowUps(Date.now(), 10)).toEqual([]);
      expect(await other.dueFollowUps(Date.now(), 10)).toEqual([theirs]);
      // Not this holder's run: finishing or postponing it changes nothing.
      await store.finishFollowUp(job.id, 'on-done');
      await store.postponeFollowUp(job.id, 'on-done', { dueAt: 0, failures: 5, error: 'not ours' });
      expect(await store.followUps(job.id)).toEqual([theirs]);
      await other.finishFollowUp(job.id, 'on-done');
      expect(await store.followUps(job.id)).toEqual([]);
    });

    it('grants the other holder\'s follow-up once its claim has lapsed; its former holder can no longer finish it', async () => {
      const { store, other } = await open(SHORT_LEASE_MS);
      const job = await withFollowUp(store);
      const theirs = await other.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
      expect(theirs).toBeDefined();
      await leaseLapse();
      expect(await store.nextDueAt(Date.now())).toBe(theirs!.dueAt);
      expect(await store.dueFollowUps(Date.now(), 10)).toMatchObject([{ jobId: job.id, kind: 'on-done' }]);
      const ours = await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
      expect(ours).toBeDefined();
      await other.finishFollowUp(job.id, 'on-done');
      await other.postponeFollowUp(job.id, 'on-done', { dueAt: 0, failures: 5 });
      expect(await store.followUps(job.id)).toEqual([ours]);
    });

    it('lets exactly one of two holders claiming a follow-up at once have it', async () => {
      const { store, other } = await open();
      const job = await withFollowUp(store);
      const claims = await Promise.all([store.claimFollowUp(job.id, 'on-done', { mustBeDue: true }), other.claimFollowUp(job.id, 'on-done', { mustBeDue: true })]);
      expect(claims.filter((claim) => claim !== undefined)).toHaveLength(1);
    });

    it('postpones a failed run: due again later, free for any holder, keeping what the patch leaves out', async () => {
      const { store, other } = await open();
      const job = await withFollowUp(store);
      await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
      const later = Date.now() + 3_600_000;
      await store.postponeFollowUp(job.id, 'on-done', { dueAt: later, failures: 1, error: 'hook exited 1' });
      expect(await store.followUps(job.id)).toMatchObject([{ dueAt: later, failures: 1, error: 'hook exited 1', ownerPid: null, leaseUntil: null }]);
      expect(await store.dueFollowUps(Date.now(), 10)).toEqual([]);
      expect(await store.nextDueAt(Date.now())).toBe(later);
      expect(await other.claimFollowUp(job.id, 'on-done', { mustBeDue: false })).toBeDefined();
      await other.postponeFollowUp(job.id, 'on-done', { dueAt: 5 });
      expect(await store.followUps(job.id)).toMatchObject([{ dueAt: 5, failures: 1, error: 'hook exited 1', ownerPid: null }]);
      expect(await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true })).toBeDefined();
    });

    it('lists the due follow-ups, oldest first, up to the limit', async () => {
      const { store } = await open();
      const jobs = [await withFollowUp(store), await withFollowUp(store), await withFollowUp(store)];
      const dueAt = [3_000, 1_000, 9_000];
      for (const [i, job] of jobs.entries()) {
        await store.claimFollowUp(job.id, 'on-done', { mustBeDue: true });
        await store.postponeFollowUp(job.id, 'on-done', { dueAt: dueAt[i]! });
      }
      const due = (followUps: FollowUp[]) => followUps.map((followUp) => followUp.jobId);
      expect(due(await store.dueFollowUps(5_000, 10))).toEqual([jobs[1]!.id, jobs[0]!.id]);
      expect(due(await store.dueFollowUps(5_000, 1))).toEqual([jobs[1]!.id]);
      expect(await store.dueFollowUps(999, 10)).toEqual([]);
    });

    it('dueFollowUps fills its limit with follow-ups this holder may take, past those another holder runs', async () => {
      const { store, other } = await open();
      const theirs = await withFollowUp(store);
      await tick();
      const free = await withFollowUp(store);
      expect(await other.claimFollowUp(theirs.id, 'on-done', { mustBeDue: true })).toBeDefined();
      expect((await store.dueFollowUps(Date.now(), 1)).map((followUp) => followUp.jobId)).toEqual([free.id]);
    });

    it('counts the pending follow-ups by kind, and lists the failing ones with their file', async () => {
      const { store } = await open();
      expect(await store.followUpCounts()).toEqual([]);
      const failing = await rowIn(store, 'uploaded', { name: 'failing.wav' });
      await store.transition(failing.id, 'done', {}, [{ kind: 'after-upload', plan: { action: 'move' } }, onDone()]);
      await store.claimFollowUp(failing.id, 'after-upload', { mustBeDue: true });
      await store.postponeFollowUp(failing.id, 'after-upload', { dueAt: 0, failures: 3, error: 'EACCES' });
      const fine = await rowIn(store, 'uploaded', { name: 'fine.wav' });
      await store.transition(fine.id, 'done', {}, [{ kind: 'after-upload', plan: { action: 'delete' } }]);
      const counts = (await store.followUpCounts()).sort((a, b) => a.kind.localeCompare(b.kind));
      expect(counts).toEqual([
        { kind: 'after-upload', pending: 2, failing: 1 },
        { kind: 'on-done', pending: 1, failing: 0 },
      ]);
      expect(await store.failingFollowUps(10)).toEqual([
        { jobId: failing.id, kind: 'after-upload', plan: { action: 'move' }, dueAt: 0, failures: 3, error: 'EACCES', ownerPid: null, leaseUntil: null, path: failing.path },
      ]);
      expect(await store.failingFollowUps(0)).toEqual([]);
    });
  });
}
