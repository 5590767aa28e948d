import { activityOf, type TransitionEvent } from '../store/job.js';

/** The totals behind the periodic summary line, since this start. */
export interface ActivityTotals {
  filesDone: number;
  bytesUploaded: number;
  failures: number;
}

/**
 * Counts what the summary line reports, from the store's transitions. Plain
 * numbers: the Prometheus series (ops/metrics.ts) exist only when something
 * can scrape them, and the summary is logged either way.
 */
export class ActivityCounter {
  #totals: ActivityTotals = { filesDone: 0, bytesUploaded: 0, failures: 0 };

  readonly record = (event: TransitionEvent): void => {
    const { stored, done, failed } = activityOf(event);
    if (stored) this.#totals.bytesUploaded += event.job.size;
    if (done) this.#totals.filesDone += 1;
    if (failed) this.#totals.failures += 1;
  };

  totals(): ActivityTotals {
    return { ...this.#totals };
  }
}
