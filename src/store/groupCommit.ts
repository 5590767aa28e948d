import { open } from 'node:fs/promises';
import { CryomixWatchError } from '../errors.js';
import { isGone } from '../files/errno.js';

/** The state database could not be made durable: no guarantee holds any more, so the daemon stops (exit 1). */
export class StoreSyncError extends CryomixWatchError {
  constructor(file: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('DB_SYNC', `cannot flush the state database ${file} to disk: ${reason} (check the disk under state.database)`, { cause });
  }
}

/**
 * Makes the commits of a short window durable with one sync, instead of one
 * sync each: a burst of files moves through five states each, and a sync per
 * commit was most of the cost of a file.
 *
 * SQLite commits without syncing (WAL, synchronous=NORMAL: a commit written
 * to the WAL survives the process, not a power cut) and this syncs the WAL
 * itself, once for everything committed since the last sync. What must not
 * happen before its commits are on disk (an API call, moving a file) waits
 * for `durable()`, which syncs within `windowMs`. Announcements of
 * transitions (log lines, counters) wait for the sync that covers them,
 * which comes within `announceWithinMs` when nobody waits: the intake's
 * transitions then share the sync of the next upload's claim.
 */
export class GroupCommit {
  /** The sync that will cover what was written since the one in flight began; undefined when nothing was. */
  #next: Batch | undefined;
  #inFlight: Batch | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerDue = Infinity;
  #failure: StoreSyncError | undefined;
  /** How much the connection had changed when the last sync began: more since then means unsynced commits. */
  #changesAtSync: number;

  constructor(
    private readonly options: {
      /** The WAL file, synced as a whole: every commit since the last checkpoint is in it. */
      walFile: string;
      /** How long a commit someone waits for waits for others to share its sync. */
      windowMs: number;
      /** How long a commit nobody waits for may wait for its sync (and its announcement). */
      announceWithinMs: number;
      /** The connection's count of changed rows, so that any write is synced, not only transitions. */
      changes: () => number;
      /** fdatasync of the file; replaced only by tests that count syncs or make one fail. */
      sync?: (file: string) => Promise<void>;
    },
  ) {
    this.#changesAtSync = options.changes();
  }

  /** Set once a sync failed; every later commit and wait reports it (a failed fsync may have dropped what it was to write). */
  get failure(): StoreSyncError | undefined {
    return this.#failure;
  }

  /** Resolves once everything committed so far is on disk; rejects with StoreSyncError if it cannot be. */
  durable(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const batch = this.#covering();
    if (batch === undefined) return Promise.resolve();
    if (batch === this.#next) {
      batch.awaited = true;
      this.#startWithin(this.options.windowMs);
    }
    return batch.promise;
  }

  /**
   * Runs `announce` once everything committed so far is on disk: at once if
   * it is, never if it cannot be. What it throws ends the process as an
   * unhandled rejection, as it would have ended the commit's caller.
   */
  whenDurable(announce: () => void): void {
    const batch = this.#covering();
    if (batch === undefined) {
      announce();
      return;
    }
    batch.announcements.push(announce);
    if (batch === this.#next) this.#startWithin(this.options.announceWithinMs);
  }

  /** The sync that covers every commit so far; undefined when everything is on disk. */
  #covering(): Batch | undefined {
    if (this.options.changes() === this.#changesAtSync) return this.#next ?? this.#inFlight;
    this.#next ??= new Batch();
    return this.#next;
  }

  /** Starts the next sync within `delayMs` (or sooner, if it was due sooner); while one runs, the next waits for it to end. */
  #startWithin(delayMs: number): void {
    if (this.#inFlight !== undefined || this.#timerDue <= performance.now() + delayMs) return;
    clearTimeout(this.#timer);
    this.#timerDue = performance.now() + delayMs;
    this.#timer = setTimeout(() => void this.#sync(), delayMs);
  }

  async #sync(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timerDue = Infinity;
    const batch = this.#next!;
    this.#next = undefined;
    this.#inFlight = batch;
    this.#changesAtSync = this.options.changes();
    if (this.#failure === undefined) {
      await (this.options.sync ?? syncFile)(this.options.walFile).catch((error: unknown) => {
        this.#failure = new StoreSyncError(this.options.walFile, error);
      });
    }
    this.#inFlight = undefined;
    // What was committed meanwhile: at once if someone waits for it (they have waited a whole sync already).
    const meanwhile = this.#next as Batch | undefined;
    if (meanwhile !== undefined) this.#startWithin(meanwhile.awaited ? 0 : this.options.announceWithinMs);
    batch.settle(this.#failure);
  }
}

/** The waiters and announcements of one sync. */
class Batch {
  readonly announcements: (() => void)[] = [];
  /** Someone waits for it: it starts within the short window. */
  awaited = false;
  readonly promise: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody may be waiting on this batch; its failure is reported by every later commit and wait.
    this.promise.catch(() => undefined);
  }

  /**
   * Lets the waiters go and announces; the announcements run first (waiters
   * resume on the microtask queue), and one that throws cannot keep a
   * waiter waiting. When the sync failed, the waiters learn why.
   */
  settle(failure: StoreSyncError | undefined): void {
    if (failure !== undefined) {
      this.#reject(failure);
      return;
    }
    this.#resolve();
    callEach(this.announcements);
  }
}

/** Calls every function, even after one throws; then throws what they threw. */
export function callEach(functions: readonly (() => void)[]): void {
  const errors: unknown[] = [];
  for (const call of functions) {
    try {
      call();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} calls failed`);
}

/**
 * fdatasync of a file by name: the sync covers the file, whichever
 * descriptor wrote it. No WAL means nothing is waiting in one: a checkpoint
 * (which syncs) moved it all into the database.
 */
async function syncFile(file: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if (isGone(error)) return;
    throw error;
  }
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
