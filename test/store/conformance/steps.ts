import { describe, expect, it } from 'vitest';
import type { Suite } from '../conformance.js';
import { SHORT_LEASE_MS, leaseLapse, rowIn, ids } from './rows.js';

/** Claims on mastering and download steps, between two holders. */
export function stepTests({ open }: Suite): void {
  describe('step claims', () => {
    it('claims and renews a mastering or downloading step, and nothing else', async () => {
      const { store } = await open();
      for (const state of ['mastering', 'downloading'] as const) {
        const job = await rowIn(store, state, { nextAttemptAt: 0 });
        expect(await store.claimStep(job.id)).toBe(true);
        expect((await store.get(job.id)).leaseUntil).toBeGreaterThan(Date.now());
        expect(await store.claimStep(job.id)).toBe(true);
      }
      for (const state of ['waiting', 'uploaded', 'done', 'failed'] as const) {
        expect(await store.claimStep((await rowIn(store, state)).id)).toBe(false);
      }
    });

    it('refuses a step while the other holder\'s claim on it is fresh, and leaves it out of the due steps', async () => {
      const { store, other } = await open();
      const theirs = await rowIn(store, 'mastering', { nextAttemptAt: 1 });
      const free = await rowIn(store, 'downloading', { nextAttemptAt: 2 });
      const ours = await rowIn(store, 'mastering', { nextAttemptAt: 3 });
      expect(await other.claimStep(theirs.id)).toBe(true);
      expect(await store.claimStep(ours.id)).toBe(true);
      expect(await store.claimStep(theirs.id)).toBe(false);
      expect(await other.claimStep(ours.id)).toBe(false);
      expect(ids(await store.dueSteps(Date.now(), 10))).toEqual([free.id, ours.id]);
      expect(ids(await other.dueSteps(Date.now(), 10))).toEqual([theirs.id, free.id]);
    });

    it('grants the other holder\'s step once its claim has lapsed', async () => {
      const { store, other } = await open(SHORT_LEASE_MS);
      const job = await rowIn(store, 'mastering', { nextAttemptAt: 0 });
      expect(await other.claimStep(job.id)).toBe(true);
      await leaseLapse();
      expect(ids(await store.dueSteps(Date.now(), 10))).toEqual([job.id]);
      expect(await store.claimStep(job.id)).toBe(true);
    });

    it('lets exactly one of two holders claiming a step at once have it', async () => {
      const { store, other } = await open();
      const job = await rowIn(store, 'downloading', { nextAttemptAt: 0 });
      const claims = await Promise.all([store.claimStep(job.id), other.claimStep(job.id)]);
      expect(claims.filter(Boolean)).toHaveLength(1);
    });

    it('lists the due steps, oldest first, up to the limit', async () => {
      const { store } = await open();
      const later = await rowIn(store, 'mastering', { nextAttemptAt: 3_000 });
      const first = await rowIn(store, 'downloading', { nextAttemptAt: 1_000 });
      await rowIn(store, 'mastering', { nextAttemptAt: 9_000 });
      await rowIn(store, 'retrying', { nextAttemptAt: 1 });
      expect(ids(await store.dueSteps(5_000, 10))).toEqual([first.id, later.id]);
      expect(ids(await store.dueSteps(5_000, 1))).toEqual([first.id]);
      expect(await store.dueSteps(999, 10)).toEqual([]);
    });

    it('dueSteps fills its limit with steps this holder may take, past those another holder runs', async () => {
      const { store, other } = await open();
      const theirs = await rowIn(store, 'mastering', { nextAttemptAt: 1 });
      const free = await rowIn(store, 'mastering', { nextAttemptAt: 2 });
      expect(await other.claimStep(theirs.id)).toBe(true);
      expect(ids(await store.dueSteps(Date.now(), 1))).toEqual([free.id]);
    });
  });
}
