import { setTimeout as sleep } from 'node:timers/promises';
import type { Job, TransitionEvent } from '../../../src/store/job.js';
import { assertTransition, IllegalTransitionError, type State } from '../../../src/store/states.js';
import type { JobStore, NewFollowUp } from '../../../src/store/store.js';
import type { ConformanceFolder } from '../conformance.js';

// Rows, clocks and events for the conformance suite: how each test gets a row into a state without repeating the moves.

/** Short enough to wait for, long enough that a claim is surely still fresh when it is first used. */
export const SHORT_LEASE_MS = 300;

/** Until a claim made with SHORT_LEASE_MS has lapsed, whichever clock the store reads. */
export const leaseLapse = () => sleep(SHORT_LEASE_MS + 150);

/** Until the clock has moved on, so that two changes get different times. */
export const tick = () => sleep(5);

export const SIGNED = 'storage said: bad https://s.example/b/o.wav?X-Goog-Signature=abc&X-Goog-Date=1';
export const SIGNED_REDACTED = 'storage said: bad https://s.example/b/o.wav?<redacted>';

/** A fractional mtime and a size beyond 32 bits: both must come back exactly as written. */
export const VERSION = { folder: '/srv/in', path: '/srv/in/mix.wav', size: 2_000_000, mtimeMs: 1_700_000_000_123.456 } as const;

export interface RowOptions {
  name?: string;
  folder?: ConformanceFolder;
  size?: number;
  /** Set when the row is stored (`uploaded`). */
  sha256?: string;
  headSha256?: string;
  /** Set when the row becomes `retrying`, `mastering` or `downloading`. */
  nextAttemptAt?: number;
  /** Which holder's claim an `uploading` row is under (default: the store it is made with). */
  claimedBy?: JobStore;
}

/** The moves from `waiting` to each state. */
const ROUTES: Readonly<Record<State, readonly State[]>> = {
  waiting: [],
  queued: ['queued'],
  uploading: ['queued', 'uploading'],
  uploaded: ['queued', 'uploading', 'uploaded'],
  mastering: ['queued', 'uploading', 'uploaded', 'mastering'],
  downloading: ['queued', 'uploading', 'uploaded', 'mastering', 'downloading'],
  done: ['queued', 'uploading', 'uploaded', 'done'],
  retrying: ['queued', 'uploading', 'retrying'],
  failed: ['queued', 'uploading', 'failed'],
  rejected: ['rejected'],
  removed: ['removed'],
};

let rowsMade = 0;

/**
 * A new file version taken to `state` by legal moves. An `uploading` row is
 * under a claim (by `claimedBy`); any other row is under none, so either
 * holder may claim its step.
 */
export async function rowIn(store: JobStore, state: State, options: RowOptions = {}): Promise<Job> {
  const folder = options.folder ?? VERSION.folder;
  const name = options.name ?? `file ${++rowsMade}.wav`;
  let job = await store.createVersion({ folder, path: `${folder}/${name}`, size: options.size ?? VERSION.size, mtimeMs: VERSION.mtimeMs });
  for (const to of ROUTES[state]) {
    if (to === 'uploading' && state === 'uploading') {
      const claimed = await (options.claimedBy ?? store).claimUpload(job.id);
      if (!claimed) throw new Error(`could not claim ${job.path}`);
      return claimed.job;
    }
    // A patch's undefined fields change nothing: the pipeline passes them so.
    const patch =
      to === 'uploaded'
        ? { sha256: options.sha256, headSha256: options.headSha256 }
        : to === 'retrying' || to === 'mastering' || to === 'downloading'
          ? { nextAttemptAt: options.nextAttemptAt }
          : {};
    job = await store.transition(job.id, to, patch);
  }
  return job;
}

/** Rows in one state, made one after the other, so their order is the order of `names`. */
export async function rowsIn(store: JobStore, state: State, names: readonly string[]): Promise<Job[]> {
  const rows: Job[] = [];
  for (const name of names) rows.push(await rowIn(store, state, { name }));
  return rows;
}

/** Whether states.ts's table allows the move: the table every store writes `state` through. */
export const isLegal = (from: State, to: State) => {
  try {
    assertTransition(0, from, to);
    return true;
  } catch (error) {
    if (error instanceof IllegalTransitionError) return false;
    throw error;
  }
};

export const ids = (jobs: readonly Pick<Job, 'id'>[]) => jobs.map((job) => job.id);
export const moves = (events: readonly TransitionEvent[]) => events.map((event) => [event.from, event.job.state]);
export const movesOf = (events: readonly TransitionEvent[], id: number) => moves(events.filter((event) => event.job.id === id));
export const onDone = (plan: unknown = { command: ['notify'] }): NewFollowUp => ({ kind: 'on-done', plan });
