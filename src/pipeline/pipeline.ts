import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { CryomixApi } from '../cryomix/api.js';
import { keyAccepted } from '../cryomix/keyProbe.js';
import type { FolderState, Job, PauseState } from '../store/job.js';
import type { JobStore } from '../store/store.js';
import { WatchedFolder, type FolderDeps } from './folder.js';
import { Scheduler } from './scheduler.js';
import { planFor, runMasteringStep, type MasteringContext } from './master.js';
import { finishStored, uploadNextJob, type UploadContext } from './upload.js';
import { runFollowUp } from './followUps.js';
import { Bandwidth, describeLimit, untilText, type BandwidthState } from './bandwidth.js';
import { formatRate } from '../config/rate.js';
import { isStoreUnavailable } from '../store/failures.js';
import { createMasteringContext, createUploadContext } from './uploadContext.js';

/** How often a state database that does not answer is asked again. */
const STORE_RECHECK_MS = 2_000;

/** How often the daemon says it is alive, for `status` (see JobStore.beat). */
const HEARTBEAT_MS = 10_000;

export interface PipelineOptions {
  config: Config;
  store: JobStore;
  api: CryomixApi;
  logger: Logger;
  /** Told of each upload attempt that will be retried, and why. */
  onRetry?: UploadContext['onRetry'];
}


/**
 * The daemon's work: watched folders feed the intake, the intake files job
 * rows, the scheduler uploads queued rows. `failure` settles if the state DB
 * breaks, after which nothing may continue.
 */
export class Pipeline {
  private readonly scheduler: Scheduler;
  readonly failure: Promise<unknown>;
  private readonly options: PipelineOptions;
  private folders: WatchedFolder[];
  private readonly folderDeps: FolderDeps;
  private readonly uploadContext: UploadContext;
  private readonly masteringContext: MasteringContext;
  private readonly bandwidth: Bandwidth;
  private fail!: (error: unknown) => void;
  /** Since when the state database has not answered, and why; undefined while it answers. */
  private storeDown: { since: number; reason: string } | undefined;
  private storeRecheck: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(options: PipelineOptions) {
    this.options = options;
    this.failure = new Promise((resolve) => {
      this.fail = resolve;
    });
    const { config, store, api, logger } = options;
    this.bandwidth = new Bandwidth(config, (state) => this.onBandwidthChange(state));
    this.scheduler = new Scheduler({
      store,
      logger,
      concurrency: config.uploads.concurrency,
      authRecheckMs: config.api.authRecheckSeconds * 1000,
      upload: (signal, onClaimed) => uploadNextJob(this.uploadContext, signal, (job) => onClaimed(job.id)),
      step: (job, signal) => runMasteringStep(job.id, this.masteringContext, signal),
      followUp: (followUp, signal) => runFollowUp(followUp, this.uploadContext, signal),
      keyAccepted: () => keyAccepted(api),
      onFatal: (error) => this.storeError(error),
    });
    this.folderDeps = {
      store,
      logger,
      sizeLimits: () => this.options.config.uploads,
      onQueued: () => this.scheduler.pump(),
      onSuperseded: (job: Job) => this.scheduler.supersede(job.id),
      onFatal: (error: unknown) => this.storeError(error),
      onProblemChange: () => this.recordFolderStates(),
    };
    this.folders = config.folders.map((folder) => new WatchedFolder(folder, this.folderDeps));
    this.uploadContext = createUploadContext(options, {
      onStale: (job) => this.folders.find((f) => f.config.path === job.folder)?.intake.touch(job.path),
      onUnauthorized: (error) => this.scheduler.pause(error.message),
      folderOf: (job) => this.folders.find((folder) => folder.config.path === job.folder),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    }, this.bandwidth);
    this.masteringContext = createMasteringContext(options, this.uploadContext, {
      plan: (job) => planFor(job, this.options.config.folders),
      onUnauthorized: (error) => this.scheduler.pause(error.message),
    }, this.bandwidth);
  }

  /**
   * Ready means: watchers are listening, and the DB agrees with the disk,
   * because events only tell what happens from now on. Files added, changed
   * or removed while the daemon was down are found by the scan.
   */
  async start(): Promise<void> {
    await this.recoverInterrupted();
    for (const folder of this.folders) await folder.start();
    this.recordFolderStates();
    this.bandwidth.start();
    await this.scheduler.start();
    // Another daemon sharing the queue queued a file or made a step due: start it now, not at the next poll.
    this.stopListening = this.options.store.listenForWork(() => this.scheduler.pump());
    await this.options.store.beat();
    this.heartbeat = setInterval(() => {
      // Not while it does not answer: the recheck asks.
      if (!this.storeDown) this.options.store.beat().catch((error: unknown) => this.storeError(error));
    }, HEARTBEAT_MS).unref();
  }

  /**
   * A crash or kill left rows mid-flight; each resumes with its own
   * Session-Id. Waiting rows outside every configured folder (the config
   * changed) have no settle rule left to finish them.
   */
  private async recoverInterrupted(): Promise<void> {
    const { store } = this.options;
    await store.releaseOrphanedUploads(() => false);
    for (const job of await store.inState('uploaded')) await finishStored(job, this.uploadContext);
    for (const job of await store.inState('waiting')) {
      if (!this.folders.some((folder) => folder.config.path === job.folder)) {
        await store.transitionIf(job.id, 'waiting', 'removed', () => ({ error: `${job.folder} is no longer a watched folder` }));
      }
    }
  }

  /**
   * Uploads first: they get their grace with the folders' gates still open.
   * Then the folders, whose gates let go of whatever waits on a hung share.
   */
  async stop(): Promise<void> {
    this.bandwidth.stop();
    this.stopListening?.();
    clearInterval(this.heartbeat);
    clearTimeout(this.storeRecheck);
    await this.scheduler.stop(this.options.config.uploads.shutdownGraceSeconds * 1000);
    for (const folder of this.folders) await folder.stop();
    if (this.storeDown) return;
    // No daemon, no word on the folders or caps: `status` must not show a stopped daemon's last view as current.
    await this.options.store.setFolderStates([]);
    await this.options.store.setBandwidth(null);
  }

  /**
   * Every error the pipeline cannot file lands here. A state database that
   * cannot be reached (a shared PostgreSQL down, restarting or cut off)
   * holds the work until it answers again: nothing is lost, since the files
   * are on disk and every folder is looked at again then. Any other error
   * ends the daemon (`failure`).
   */
  private storeError(error: unknown): void {
    if (!isStoreUnavailable(error)) return this.fail(error);
    if (this.storeDown) return;
    this.storeDown = { since: Date.now(), reason: error.message };
    this.scheduler.hold();
    this.options.logger.error({ err: error }, `${error.message}; no upload or step starts until it answers, and every folder is looked at again then`);
    this.recheckStore();
  }

  private recheckStore(): void {
    this.storeRecheck = setTimeout(() => {
      this.options.store.paused().then(
        () => this.storeAnswers(),
        (error: unknown) => (isStoreUnavailable(error) ? this.recheckStore() : this.fail(error)),
      );
    }, STORE_RECHECK_MS).unref();
  }

  private storeAnswers(): void {
    const seconds = Math.round((Date.now() - (this.storeDown?.since ?? Date.now())) / 1000);
    this.storeDown = undefined;
    this.options.logger.warn({ downSeconds: seconds }, `the state database answers again after ${seconds} s: uploads resume, and every folder is looked at again`);
    for (const folder of this.folders) folder.rescan();
    this.recordFolderStates();
    this.options.store.setBandwidth(this.bandwidth.state).catch((error: unknown) => this.storeError(error));
    this.scheduler.release();
  }

  /** Why no work starts: the state database has not answered, since when; undefined while it answers. */
  get storeProblem(): string | undefined {
    if (!this.storeDown) return undefined;
    return `the state database has not answered for ${Math.round((Date.now() - this.storeDown.since) / 1000)} s (${this.storeDown.reason}); uploads wait, files are looked at again once it answers`;
  }

  /**
   * Applies a new configuration without a restart (SIGHUP): folders added,
   * removed or changed, and the upload settings (an attempt already running
   * keeps the stall timeout it started with). Returns what changed, in
   * words. The API section applies at the next start. Files a removed
   * folder had already queued are still uploaded; those still settling are
   * left, and resume if the folder comes back.
   */
  async reload(next: Config): Promise<string[]> {
    const changes: string[] = [];
    const previous = this.options.config;
    this.options.config = next;
    const wanted = new Map(next.folders.map((folder) => [folder.path, folder]));
    const kept: WatchedFolder[] = [];
    for (const folder of this.folders) {
      const same = wanted.get(folder.config.path);
      if (same && JSON.stringify(same) === JSON.stringify(folder.config)) {
        kept.push(folder);
        continue;
      }
      await folder.stop();
      if (!same) changes.push(`stopped watching ${folder.config.path}`);
    }
    for (const config of next.folders) {
      if (kept.some((folder) => folder.config.path === config.path)) continue;
      const folder = new WatchedFolder(config, this.folderDeps);
      await folder.start();
      kept.push(folder);
      changes.push(`${previous.folders.some((f) => f.path === config.path) ? 'applied new settings to' : 'started watching'} ${config.path}`);
    }
    this.folders = kept;
    this.recordFolderStates();
    if (next.uploads.concurrency !== previous.uploads.concurrency) this.scheduler.setConcurrency(next.uploads.concurrency);
    this.bandwidth.reload(next);
    if (next.downloads.maxBytesPerSecond !== previous.downloads.maxBytesPerSecond) changes.push(`downloads.maxBytesPerSecond is now ${formatRate(next.downloads.maxBytesPerSecond)}`);
    // The rest of `uploads` is read where it is used, so the new values already apply. A key may be there before and not now (a schedule).
    for (const key of new Set([...Object.keys(next.uploads), ...Object.keys(previous.uploads)]) as Set<keyof Config['uploads']>) {
      if (JSON.stringify(next.uploads[key]) !== JSON.stringify(previous.uploads[key])) changes.push(`uploads.${key} is now ${uploadSettingText(next.uploads, key)}`);
    }
    return changes;
  }

  /** Why all API work waits (the API refused the key), as the scheduler keeps it; null when it does not. */
  get paused(): PauseState | null {
    return this.scheduler.paused;
  }

  /** The upload and download caps in force, and why. */
  get bandwidthState(): BandwidthState {
    return this.bandwidth.state;
  }

  /**
   * A new cap reached the throttles already; a pause window parks the
   * uploads. Said in the log and recorded for `status` in another process.
   */
  private onBandwidthChange(state: BandwidthState): void {
    if (state.limit === 'pause') this.scheduler.park(state.reason, state.nextChangeAt);
    else this.scheduler.resume();
    this.options.logger.info({ uploadLimit: state.limit, reason: state.reason, nextChangeAt: state.nextChangeAt, downloadLimit: state.downloadLimit }, `upload limit: ${describeLimit(state)}${untilText(state.nextChangeAt)}`);
    this.options.store.setBandwidth(state).catch((error: unknown) => this.storeError(error));
  }

  get watchedFolders(): string[] {
    return this.folders.map((folder) => folder.config.path);
  }

  /** Each configured folder and what keeps it from being watched right now, if anything. */
  folderStates(): FolderState[] {
    return this.folders.map((folder) => ({ path: folder.config.path, problem: folder.problem }));
  }

  /** For `status`, which runs in another process. A failing DB here is the daemon's end, like anywhere else. */
  private recordFolderStates(): void {
    this.options.store.setFolderStates(this.folderStates()).catch((error: unknown) => this.storeError(error));
  }

  /**
   * File operations may still be held by the kernel: through a gate, or
   * not (a move after upload) on a folder that stopped answering. A
   * stopping process must not wait for them.
   */
  get callsMayBeStuck(): boolean {
    return this.folders.some(({ gate }) => gate.inKernel > 0 || gate.notAnsweringSince !== undefined);
  }
}

/** An upload setting as its config would say it: rates in units, a schedule by its windows. */
function uploadSettingText(uploads: Config['uploads'], key: keyof Config['uploads']): string {
  if (key === 'maxBytesPerSecond') return formatRate(uploads.maxBytesPerSecond);
  if (key === 'schedule') return uploads.schedule ? `${uploads.schedule.windows.map((window) => `${window.label} ${window.limit === 'pause' ? 'pause' : formatRate(window.limit)}`).join(', ')} (${uploads.schedule.timezone})` : 'none';
  return JSON.stringify(uploads[key]);
}
