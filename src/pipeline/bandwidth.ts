import type { Config } from '../config/index.js';
import { formatRate } from '../config/rate.js';
import { relativeTime } from '../report/format.js';
import { limitAt, type LimitInForce } from '../transfer/timetable.js';
import { Throttle } from '../transfer/throttle.js';

/** What `status`, the status page and /metrics say about the upload cap. */
export interface BandwidthState extends LimitInForce {
  /** The masters' download cap (not scheduled). */
  downloadLimit: number | null;
}

/** The keys the caps come from. */
export interface BandwidthSettings {
  uploads: Pick<Config['uploads'], 'maxBytesPerSecond' | 'schedule'>;
  downloads: Config['downloads'];
}

/** The schedule is looked at again at least this often. */
const RECHECK_MS = 60_000;

/**
 * The caps in force: the upload cap from `uploads.maxBytesPerSecond` and
 * `uploads.schedule`, and the download cap. It sets the two throttles every
 * transfer draws on, so a new cap (a schedule boundary, a reload) reaches
 * the transfers already running at once, and tells `onChange` (the
 * scheduler parks uploads during a `pause` window).
 */
export class Bandwidth {
  readonly uploads = new Throttle();
  readonly downloads = new Throttle();
  #settings: BandwidthSettings;
  #state: BandwidthState;
  #timer: NodeJS.Timeout | undefined;
  readonly #onChange: (state: BandwidthState) => void;
  readonly #now: () => number;

  constructor(settings: BandwidthSettings, onChange: (state: BandwidthState) => void, now: () => number = Date.now) {
    this.#settings = settings;
    this.#onChange = onChange;
    this.#now = now;
    this.#state = this.#evaluate();
  }

  get state(): BandwidthState {
    return this.#state;
  }

  /** Starts following the schedule; `onChange` hears of the caps in force at once. */
  start(): void {
    if (!this.#apply()) this.#onChange(this.#state);
  }

  /** New settings (SIGHUP). */
  reload(settings: BandwidthSettings): void {
    this.#settings = settings;
    this.#apply();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #evaluate(): BandwidthState {
    const { uploads, downloads } = this.#settings;
    return { ...limitAt(uploads.maxBytesPerSecond, uploads.schedule, this.#now()), downloadLimit: downloads.maxBytesPerSecond };
  }

  /** Sets the throttles to the caps in force now and waits for the next change; true when they changed. */
  #apply(): boolean {
    clearTimeout(this.#timer);
    const previous = this.#state;
    this.#state = this.#evaluate();
    const { limit, nextChangeAt, downloadLimit } = this.#state;
    // While paused no upload runs (the scheduler parks them): the throttle keeps the cap it had.
    if (limit !== 'pause') this.uploads.setRate(limit);
    this.downloads.setRate(downloadLimit);
    // Boundaries are wall-clock times and setTimeout runs on the monotonic clock: after a suspend or a clock step, look again soon.
    if (nextChangeAt !== null) this.#timer = setTimeout(() => this.#apply(), Math.min(RECHECK_MS, Math.max(0, nextChangeAt - this.#now()))).unref();
    const changed = fingerprint(previous) !== fingerprint(this.#state);
    if (changed) this.#onChange(this.#state);
    return changed;
  }
}

/** "4 MB/s (schedule: Mon-Fri 09:00-19:00)", "paused (schedule: Sat 00:00-24:00)", "off (base)". */
export function describeLimit({ limit, reason }: Pick<LimitInForce, 'limit' | 'reason'>): string {
  return `${limit === 'pause' ? 'paused' : formatRate(limit)} (${reason})`;
}

/** One line for people (status, the status page): "Upload limit: 4 MB/s (schedule: Mon-Fri 09:00-19:00), changes in 3 h (…); masters' downloads: off". */
export function bandwidthLine(state: BandwidthState, now = Date.now()): string {
  const next = state.nextChangeAt === null ? '' : `, changes ${relativeTime(state.nextChangeAt, now)} (${isoTime(state.nextChangeAt)})`;
  return `Upload limit: ${describeLimit(state)}${next}; masters' downloads: ${formatRate(state.downloadLimit)}`;
}

/** Same text, same caps in force: a re-evaluation that finds it is not a change. */
const fingerprint = (state: BandwidthState) => `${describeLimit(state)} ${state.downloadLimit} ${state.nextChangeAt}`;

const isoTime = (at: number) => new Date(at).toISOString();

/** " until 2026-12-07T06:00:00.000Z", or nothing for a cap that does not change. */
export function untilText(nextChangeAt: number | null): string {
  return nextChangeAt === null ? '' : ` until ${isoTime(nextChangeAt)}`;
}
