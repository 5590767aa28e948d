import { isUtf8 } from 'node:buffer';
import { readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { isStoreError } from '../store/failures.js';
import type { Job } from '../store/job.js';
import type { JobStore, Move } from '../store/store.js';
import type { State } from '../store/states.js';
import { Settler, statFile, type FileStat } from '../watch/settle.js';
import { admit, type SizeLimits } from './admit.js';
import { isGone, isPermissionDenied } from '../files/errno.js';
import { FolderNotAnsweringError, type FileOperations } from '../files/folderGate.js';
import { sameVersion, unreadableReason } from './version.js';

/** Versions not yet stored: a file that goes away in one of these is gone for good. */
const ON_ITS_WAY: readonly State[] = ['waiting', 'queued', 'retrying', 'uploading'];

/** How soon a file that could not be checked (EMFILE, EIO) is looked at again. */
const MIN_RECHECK_MS = 5_000;

/** A WAV whose header stays a placeholder this long while the file is stable is not coming back. */
export const HEADER_GIVE_UP_MS = 10 * 60 * 1000;

export interface IntakeOptions {
  /** The configured folder root; recorded on every job for per-folder dedupe. */
  folder: string;
  settleMs: number;
  /** Read at each admission: a reload (SIGHUP) may change them. */
  sizeLimits(): SizeLimits;
  store: JobStore;
  logger: Logger;
  /** A job became `queued`: wake the scheduler. */
  onQueued(): void;
  /** A job's upload must stop because its file changed or vanished. */
  onSuperseded(job: Job): void;
  /** The state DB failed: nothing may continue. */
  onFatal(error: unknown): void;
  /** The folder's root is there and is the directory being watched; a file is only gone if its folder is. */
  rootPresent(): Promise<boolean>;
  /** Every file operation goes through it: the folder's gate. */
  run: FileOperations;
}

/**
 * Turns sightings of paths into job rows, applying the one settle rule to
 * every source (watcher event, startup scan, polling, a stale upload): a path
 * is only ever `touch`ed, and the settler's observations decide the rest.
 */
export class Intake {
  private readonly options: IntakeOptions;
  private readonly settler: Settler;
  /** Paths whose check failed for a passing reason (EMFILE, EIO), each with the timer that looks again: one at a time. */
  private readonly rechecks = new Map<string, NodeJS.Timeout>();
  /** Paths this process may not read, already logged: each poll or rescan looks again, and says nothing new. */
  private readonly refused = new Set<string>();

  constructor(options: IntakeOptions) {
    this.options = options;
    this.settler = new Settler({
      settleMs: options.settleMs,
      stat: (path) => this.observe(path),
      onSettled: (path, fileStat, stableForMs) => this.settled(path, fileStat, stableForMs),
      onGone: (path) => this.guarded(() => this.gone(path)),
      onError: (path, error) => this.guarded(() => this.unreadable(path, error)),
    });
  }

  /** Something may have happened to `path`; cheap and idempotent. */
  touch(path: string): void {
    this.settler.touch(path);
  }

  /** Whether the settle rule is following `path` now, or will look at it again soon. */
  follows(path: string): boolean {
    return this.settler.follows(path) || this.rechecks.has(path);
  }

  close(): void {
    this.settler.close();
    for (const timer of this.rechecks.values()) clearTimeout(timer);
    this.rechecks.clear();
    this.refused.clear();
  }

  /**
   * Records what is on disk: a waiting row follows the file as it grows; any
   * other row whose version no longer matches gives way to a new version with
   * a new Session-Id (stopping its upload if one is running).
   */
  private async observe(path: string): Promise<FileStat | null> {
    const fileStat = await this.options.run(() => statFile(path));
    const { store, folder } = this.options;
    if (!fileStat) {
      if (path.includes('\uFFFD')) await this.rejectUndecodableName(path);
      return null;
    }
    const job = await store.current(path);
    if (job?.state === 'waiting') {
      if (!sameVersion(job, fileStat)) await store.updateWaiting(job.id, fileStat.size, fileStat.mtimeMs);
    } else if (job?.state === 'removed' && sameVersion(job, fileStat)) {
      // The same version is back (moved out and in again, a share remounted): same row, same Session-Id.
      // Conditional, as every move here: another daemon sharing the queue may see the same file at the same moment.
      await store.transitionIf(job.id, 'removed', 'waiting', () => ({ error: null }));
    } else if (!job || !sameVersion(job, fileStat)) {
      if (job?.state === 'uploading') this.options.onSuperseded(job);
      await store.createVersion({ folder, path, ...fileStat });
    }
    return fileStat;
  }

  /**
   * A name that is not valid UTF-8 reaches us decoded lossily (with U+FFFD),
   * so the file cannot be opened by that name. Rather than lose it silently,
   * it gets a row that says why and what to do.
   */
  private async rejectUndecodableName(path: string): Promise<void> {
    const { store, folder } = this.options;
    if ((await store.current(path))?.state === 'rejected') return;
    const names = await this.options.run(() => readdir(dirname(path), { encoding: 'buffer' })).catch(() => []);
    const raw = names.find((name) => !isUtf8(name) && name.toString('utf8') === basename(path));
    if (!raw) return;
    // Size and mtime cannot be read through the lossy name; the row records the rejection, not a version.
    const job = await store.createVersion({ folder, path, size: 0, mtimeMs: 0 });
    await store.transitionIf(job.id, 'waiting', 'rejected', () => ({ error: `the file name is not valid UTF-8 (bytes ${raw.toString('hex')}); rename it so that it can be uploaded` }));
  }

  private async settled(path: string, fileStat: FileStat, stableForMs: number): Promise<'done' | 'wait'> {
    const { store } = this.options;
    const job = await store.current(path);
    if (job?.state !== 'waiting') return 'done';
    const admission = await admit(store, job, fileStat, this.options.sizeLimits(), this.options.run);
    this.refused.delete(path);
    if (admission.outcome === 'queued') this.options.onQueued();
    if (admission.outcome !== 'incomplete') return 'done';
    if (stableForMs < HEADER_GIVE_UP_MS) return 'wait';
    await store.transitionIf(job.id, 'waiting', 'rejected', () => ({
      error: `${admission.reason}; unchanged for ${Math.round(stableForMs / 60_000)} minutes, so it will not be finished`,
    }));
    return 'done';
  }

  /**
   * The file is gone: a version still on its way is `removed`, finished ones
   * keep their history. Not while the folder itself is away: an unmounted
   * share's files are not gone.
   */
  private async gone(path: string): Promise<void> {
    const { store } = this.options;
    const seen = await store.current(path);
    if (!(await this.options.rootPresent())) return;
    this.refused.delete(path);
    const job = await store.current(path);
    // A new version may have come and been queued while the root was looked at: only the version found missing is gone.
    if (!job || job.id !== seen?.id) return;
    if (job.state === 'uploading') this.options.onSuperseded(job);
    const gone: Move[] = [{ to: 'removed', patch: { error: 'the file disappeared before it was uploaded' } }];
    await store.moveIf(job.id, (row) => (ON_ITS_WAY.includes(row.state) ? gone : []));
  }

  /**
   * EACCES or EPERM: permissions not yet given, or an SMB client's lock
   * conflict, which a share reports the same way. Neither is final: the file
   * stays `waiting` with the reason and the fix (shown by `list`), the folder's
   * passes (each poll, each rescan) look at it again, and the log says so once.
   */
  private async refusedAccess(path: string, reason: string, error: unknown): Promise<void> {
    const job = await this.options.store.current(path);
    const note = `${reason}; looked at again at each poll or rescan`;
    if (job?.state === 'waiting' && job.error !== note) await this.options.store.annotate(job.id, note);
    if (this.refused.has(path)) return;
    this.refused.add(path);
    this.options.logger.warn({ err: error, file: path }, `${path}: ${note}`);
  }

  /** Settler callbacks run on timers: a failing DB there must still stop the daemon, not vanish. */
  private guarded(work: () => Promise<void>): void {
    work().catch((error: unknown) => this.options.onFatal(error));
  }

  private async unreadable(path: string, error: unknown): Promise<void> {
    const { store, logger } = this.options;
    if (isStoreError(error)) throw error;
    if (isGone(error)) return this.gone(path);
    // The folder is silent (a hung share): said once for the folder, which looks at every file again once it answers.
    if (error instanceof FolderNotAnsweringError) return;
    const reason = unreadableReason(error);
    if (reason && isPermissionDenied(error)) return this.refusedAccess(path, reason, error);
    if (reason) {
      const job = await store.current(path);
      if (job?.state === 'waiting') await store.transitionIf(job.id, 'waiting', 'rejected', () => ({ error: reason }));
      return;
    }
    // Out of file descriptors, an I/O error on a flaky share: these pass, so look again rather than leave the file waiting.
    // Once per path: every pass touches a file it cannot stat, and each touch that fails again would start another chain.
    if (this.rechecks.has(path)) return;
    const retryMs = Math.max(this.options.settleMs, MIN_RECHECK_MS);
    logger.warn({ err: error, file: path }, `cannot check ${path} right now (${(error as Error).message}); trying again in ${Math.round(retryMs / 1000)} s`);
    const recheck = setTimeout(() => {
      this.rechecks.delete(path);
      this.touch(path);
    }, retryMs).unref();
    this.rechecks.set(path, recheck);
  }
}
