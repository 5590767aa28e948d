import { lstat, lstatSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { nullIfGone } from '../files/errno.js';

export interface FileStat {
  size: number;
  mtimeMs: number;
}

export interface SettlerOptions {
  settleMs: number;
  /** null = the file is gone. */
  stat(path: string): Promise<FileStat | null>;
  /**
   * Called once the file's size+mtime stayed unchanged for settleMs with no
   * touch in between. Never runs twice at once for the same path. Return
   * 'wait' to be asked again after another settleMs (e.g. the WAV header is
   * still a placeholder): stableForMs keeps growing while nothing changes, so
   * the caller can give up after its own deadline.
   */
  onSettled(path: string, stat: FileStat, stableForMs: number): Promise<'done' | 'wait'>;
  onGone(path: string): void;
  /** stat or onSettled threw; the path is no longer tracked. */
  onError(path: string, error: unknown): void;
}

/**
 * The callback form: it costs about half the CPU of fs/promises' lstat,
 * which a poll pass over 100k files pays 100k times.
 */
const lstatCallback = promisify(lstat);

/** The settle stat for real files: a missing file (or a parent that became a file) is "gone", anything else throws. */
export async function statFile(path: string): Promise<FileStat | null> {
  try {
    return fileStatOf(await lstatCallback(path));
  } catch (error) {
    return nullIfGone(error);
  }
}

/** statFile for a local disk, where a stat takes microseconds and waiting for its promise costs more than the stat. */
export function statFileSync(path: string): FileStat | null {
  try {
    return fileStatOf(lstatSync(path));
  } catch (error) {
    return nullIfGone(error);
  }
}

// A symlink (or fifo, socket, directory) is never uploaded: links are not followed.
const fileStatOf = (found: Stats): FileStat | null => (found.isFile() ? { size: found.size, mtimeMs: found.mtimeMs } : null);

interface Tracked {
  /** Last observed stat; -1 until the first observation. */
  size: number;
  mtimeMs: number;
  /** When the current size+mtime was first observed. */
  stableSince: number;
  lastTouch: number;
  timer: NodeJS.Timeout | undefined;
  /** onSettled is running: touches only mark `touchedWhileSettling`, the re-check comes afterwards. */
  settling: boolean;
  touchedWhileSettling: boolean;
  /** The caller answered 'done' for the current size+mtime; only a real change makes it interesting again. */
  done: boolean;
}

/** The most the first stat of a newly sighted file waits: long enough for a quick write to end, short against settleMs. */
const BASELINE_DELAY_MS = 100;

// Monotonic, so a wall-clock step (NTP, DST on a NAS) neither settles files early nor stalls them.
const now = (): number => performance.now();

/**
 * The one rule that decides when a path is finished being written, whatever
 * reported it: watcher event, startup scan or poll. Every path has at most one
 * timer or one stat/onSettled in flight; touches only move a timestamp, so a
 * storm of events costs nothing.
 */
export class Settler {
  readonly #options: SettlerOptions;
  readonly #tracked = new Map<string, Tracked>();
  #closed = false;

  constructor(options: SettlerOptions) {
    if (!Number.isFinite(options.settleMs) || options.settleMs < 0) {
      throw new RangeError(`Expected \`settleMs\` to be a number from 0 and up, got \`${String(options.settleMs)}\``);
    }
    this.#options = options;
  }

  /** Something happened to `path`: (re)start waiting for it to be quiet. Idempotent and cheap. */
  touch(path: string): void {
    if (this.#closed) return;
    const t = now();
    const entry = this.#tracked.get(path);
    if (entry !== undefined) {
      entry.lastTouch = t;
      if (entry.settling) entry.touchedWhileSettling = true;
      return;
    }
    const fresh: Tracked = {
      size: -1,
      mtimeMs: -1,
      stableSince: t,
      lastTouch: t,
      timer: undefined,
      settling: false,
      touchedWhileSettling: false,
      done: false,
    };
    this.#tracked.set(path, fresh);
    // The baseline stat, from which settleMs is counted, waits a moment: a file is first sighted when it is created, and a
    // stat at once, on an idle daemon, often lands in the middle of a writer's quick write and finds it short, which then
    // costs a second settleMs (1 in 12 files bounced by a loop, measured).
    this.#schedule(path, fresh, Math.min(BASELINE_DELAY_MS, this.#options.settleMs / 10));
  }

  /** Stop tracking `path`. A stat or onSettled already in flight finishes, but its outcome is discarded. */
  forget(path: string): void {
    const entry = this.#tracked.get(path);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.#tracked.delete(path);
  }

  /** Whether `path` is tracked: a timer, a stat or onSettled is pending for it. */
  follows(path: string): boolean {
    return this.#tracked.has(path);
  }

  get size(): number {
    return this.#tracked.size;
  }

  close(): void {
    this.#closed = true;
    for (const entry of this.#tracked.values()) clearTimeout(entry.timer);
    this.#tracked.clear();
  }

  #schedule(path: string, entry: Tracked, delayMs: number): void {
    entry.timer = setTimeout(() => void this.#check(path, entry), delayMs);
    // A daemon that is otherwise done must be able to exit while files are still settling.
    entry.timer.unref();
  }

  #isCurrent(path: string, entry: Tracked): boolean {
    return this.#tracked.get(path) === entry;
  }

  async #check(path: string, entry: Tracked): Promise<void> {
    entry.timer = undefined;
    const { settleMs } = this.#options;
    let observed: FileStat | null;
    try {
      observed = await this.#options.stat(path);
    } catch (error) {
      if (!this.#isCurrent(path, entry)) return;
      this.#tracked.delete(path);
      this.#options.onError(path, error);
      return;
    }
    if (!this.#isCurrent(path, entry)) return;
    if (observed === null) {
      this.#tracked.delete(path);
      this.#options.onGone(path);
      return;
    }

    const t = now();
    if (observed.size !== entry.size || observed.mtimeMs !== entry.mtimeMs) {
      entry.size = observed.size;
      entry.mtimeMs = observed.mtimeMs;
      entry.stableSince = t;
      entry.done = false;
      this.#schedule(path, entry, settleMs);
      return;
    }
    const quietAt = Math.max(entry.stableSince, entry.lastTouch) + settleMs;
    if (t < quietAt) {
      this.#schedule(path, entry, quietAt - t);
      return;
    }
    if (entry.done) {
      this.#tracked.delete(path);
      return;
    }

    entry.settling = true;
    entry.touchedWhileSettling = false;
    let outcome: 'done' | 'wait';
    try {
      outcome = await this.#options.onSettled(path, { size: observed.size, mtimeMs: observed.mtimeMs }, t - entry.stableSince);
    } catch (error) {
      entry.settling = false;
      if (!this.#isCurrent(path, entry)) return;
      this.#tracked.delete(path);
      this.#options.onError(path, error);
      return;
    }
    entry.settling = false;
    if (!this.#isCurrent(path, entry)) return;
    if (outcome === 'done' && !entry.touchedWhileSettling) {
      this.#tracked.delete(path);
      return;
    }
    // A touch during a 'done' settle may be a new version being written: one
    // more look decides, and an unchanged file is then dropped without asking again.
    entry.done = outcome === 'done';
    this.#schedule(path, entry, settleMs);
  }
}
