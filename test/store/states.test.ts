import { describe, expect, it } from 'vitest';
import { assertTransition, FINAL_STATES, IllegalTransitionError, STATES } from '../../src/store/states.js';

describe('transition table', () => {
  it('lets a file travel the happy path', () => {
    const path = ['waiting', 'queued', 'uploading', 'uploaded', 'done'] as const;
    for (let i = 1; i < path.length; i++) expect(() => assertTransition(1, path[i - 1]!, path[i]!)).not.toThrow();
  });

  it('allows retry loops and re-arming failed files', () => {
    expect(() => assertTransition(1, 'uploading', 'retrying')).not.toThrow();
    expect(() => assertTransition(1, 'retrying', 'queued')).not.toThrow();
    expect(() => assertTransition(1, 'failed', 'queued')).not.toThrow();
  });

  it.each([
    ['waiting', 'uploading'],
    ['queued', 'done'],
    ['done', 'queued'],
    ['rejected', 'queued'],
    ['removed', 'queued'],
    ['retrying', 'uploading'],
    ['uploading', 'uploading'],
  ] as const)('refuses %s → %s', (from, to) => {
    expect(() => assertTransition(7, from, to)).toThrow(IllegalTransitionError);
  });

  it('leaves done only for mastering (upload --master on a stored upload), and rejected never', () => {
    for (const to of STATES) expect(() => assertTransition(1, 'rejected', to)).toThrow(IllegalTransitionError);
    for (const to of STATES.filter((state) => state !== 'mastering')) expect(() => assertTransition(1, 'done', to)).toThrow(IllegalTransitionError);
    expect(() => assertTransition(1, 'done', 'mastering')).not.toThrow();
    expect(FINAL_STATES).toEqual(['done', 'failed', 'rejected', 'removed']);
  });

  it('lets a removed version wait again only when the same file comes back', () => {
    expect(() => assertTransition(1, 'removed', 'waiting')).not.toThrow();
    for (const to of STATES.filter((s) => s !== 'waiting')) expect(() => assertTransition(1, 'removed', to)).toThrow(IllegalTransitionError);
  });
});
