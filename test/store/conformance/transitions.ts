import { describe, expect, it } from 'vitest';
import { IllegalTransitionError, STATES, type State } from '../../../src/store/states.js';
import type { Suite } from '../conformance.js';
import { tick, SIGNED, SIGNED_REDACTED, VERSION, rowIn, isLegal, moves, onDone } from './rows.js';

/** Moves through the transition table, conditional moves, and their announcements. */
export function transitionTests({ open }: Suite): void {
  describe('transitions', () => {
    for (const from of STATES) {
      it(`from ${from}: makes the moves the table allows and refuses the others with IllegalTransitionError, leaving the row as it was`, async () => {
        const { store } = await open();
        for (const to of STATES) {
          const before = await rowIn(store, from, { nextAttemptAt: 0 });
          if (isLegal(from, to)) {
            expect(await store.transition(before.id, to)).toMatchObject({ id: before.id, state: to });
            expect((await store.get(before.id)).state).toBe(to);
          } else {
            await expect(store.transition(before.id, to)).rejects.toThrow(IllegalTransitionError);
            expect(await store.get(before.id)).toEqual(before);
          }
        }
      });
    }

    it('keeps signed URL queries out of every stored error', async () => {
      const { store } = await open();
      const rejected = await rowIn(store, 'waiting');
      await store.transition(rejected.id, 'rejected', { error: SIGNED });
      expect((await store.get(rejected.id)).error).toBe(SIGNED_REDACTED);
      const failed = await rowIn(store, 'uploading');
      await store.fileOutcome(failed.id, 'failed', { error: SIGNED });
      expect((await store.get(failed.id)).error).toBe(SIGNED_REDACTED);
      const mastering = await rowIn(store, 'mastering');
      await store.updateStep(mastering.id, { error: SIGNED });
      expect((await store.get(mastering.id)).error).toBe(SIGNED_REDACTED);
      const done = await rowIn(store, 'uploaded');
      await store.transition(done.id, 'done', {}, [onDone()]);
      await store.claimFollowUp(done.id, 'on-done', { mustBeDue: true });
      await store.postponeFollowUp(done.id, 'on-done', { dueAt: 0, failures: 1, error: SIGNED });
      expect((await store.followUps(done.id))[0]?.error).toBe(SIGNED_REDACTED);
    });

    it('moves a row conditionally: only from the state it is expected in, with a patch made from the row', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'waiting');
      expect(await store.transitionIf(job.id, 'retrying', 'queued')).toBeUndefined();
      expect(await store.get(job.id)).toEqual(job);
      const queued = await store.transitionIf(job.id, 'waiting', 'queued', (row) => ({ error: `seen at ${row.size} bytes` }));
      expect(queued).toMatchObject({ state: 'queued', error: `seen at ${VERSION.size} bytes` });
      await expect(store.transitionIf(job.id, 'queued', 'done')).rejects.toThrow(IllegalTransitionError);
      await store.durable();
      expect(moves(events)).toEqual([
        [null, 'waiting'],
        ['waiting', 'queued'],
      ]);
    });

    it('makes the moves a decision takes of the row as it is, in one commit; none leaves it as it is', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'waiting');
      const seen: State[] = [];
      expect(await store.moveIf(job.id, (row) => (seen.push(row.state), []))).toBeUndefined();
      expect(await store.get(job.id)).toEqual(job);
      const moved = await store.moveIf(job.id, (row) => (seen.push(row.state), [{ to: 'queued' }, { to: 'uploading', patch: { bytesSent: 5 } }]));
      expect(moved).toMatchObject({ state: 'uploading', bytesSent: 5 });
      expect(await store.get(job.id)).toEqual(moved);
      expect(seen).toEqual(['waiting', 'waiting']);
      await store.durable();
      expect(moves(events)).toEqual([
        [null, 'waiting'],
        ['waiting', 'queued'],
        ['queued', 'uploading'],
      ]);
    });

    it('undoes every move of a decision when one is illegal or the decision throws, and announces none', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'waiting');
      await expect(store.moveIf(job.id, () => [{ to: 'queued' }, { to: 'done' }])).rejects.toThrow(IllegalTransitionError);
      await expect(
        store.moveIf(job.id, () => {
          throw new Error('plan unreadable');
        }),
      ).rejects.toThrow('plan unreadable');
      await expect(store.transition(job.id, 'done')).rejects.toThrow(IllegalTransitionError);
      expect(await store.get(job.id)).toEqual(job);
      // Nor later, with the next commit's.
      await store.transition(job.id, 'queued');
      await store.durable();
      expect(moves(events)).toEqual([
        [null, 'waiting'],
        ['waiting', 'queued'],
      ]);
    });

    it('reports every transition with the row after it and the time spent in the previous state', async () => {
      const { store, events } = await open();
      const job = await store.createVersion(VERSION);
      await tick();
      const rejected = await store.transition(job.id, 'rejected', { error: 'too small' });
      await store.durable();
      expect(moves(events)).toEqual([
        [null, 'waiting'],
        ['waiting', 'rejected'],
      ]);
      expect(events.map((event) => event.job)).toEqual([job, rejected]);
      expect(events[0]!.durationMs).toBe(0);
      expect(events[1]!.durationMs).toBe(rejected.updatedAt - job.updatedAt);
      expect(events[1]!.durationMs).toBeGreaterThan(0);
    });

    it('announces the transitions of a commit only once it has committed', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'uploading');
      await store.durable();
      const before = events.length;
      const heardWhileDeciding: number[] = [];
      await store.fileOutcome(job.id, 'uploaded', { sha256: 'abc' }, () => {
        heardWhileDeciding.push(events.length);
        return [{ to: 'done' }];
      });
      await store.durable();
      // A decision may be run again (a retried transaction): none of its runs hears of its own commit.
      expect(heardWhileDeciding.length).toBeGreaterThan(0);
      expect(heardWhileDeciding.every((heard) => heard === before)).toBe(true);
      expect(moves(events.slice(before))).toEqual([
        ['uploading', 'uploaded'],
        ['uploaded', 'done'],
      ]);
    });

    it('changes step fields, notes and progress without a transition', async () => {
      const { store, events } = await open();
      const job = await rowIn(store, 'mastering', { nextAttemptAt: 0 });
      await store.durable();
      const before = events.length;
      const plan = { preset: 'warm', files: ['a.wav'], outputFolder: '/srv/in/masters' };
      await store.updateStep(job.id, { nextAttemptAt: 42, masteringRequested: true, masteringStatus: 'processing', masteringPercent: 40, stepFailures: 2, masteringPlan: plan });
      await store.annotate(job.id, 'still mastering');
      await store.recordProgress(job.id, 1_234);
      expect(await store.get(job.id)).toMatchObject({
        state: 'mastering',
        nextAttemptAt: 42,
        masteringRequested: true,
        masteringStatus: 'processing',
        masteringPercent: 40,
        stepFailures: 2,
        masteringPlan: plan,
        error: 'still mastering',
        bytesSent: 1_234,
      });
      await store.durable();
      expect(events.length).toBe(before);
    });
  });
}
