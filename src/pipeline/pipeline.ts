import type { Logger } from 'pino';
import type { Config, FolderConfig } from '../config/index.js';
import type { CryomixApi } from '../cryomix/api.js';
import { UnauthorizedError } from '../cryomix/errors.js';
import type { Job } from '../store/job.js';
import { isStoreFailure } from '../store/db.js';
import type { JobStore } from '../store/jobs.js';
import { createPathFilter, type PathFilter } from '../watch/junk.js';
import { statFile } from '../watch/settle.js';
import { walkFiles } from '../watch/walk.js';
import { watchFolder, type FolderWatch } from '../watch/watcher.js';
import { Intake } from './intake.js';
import { recoverOrphanedUploads } from './recovery.js';
import { Scheduler } from './scheduler.js';
import { completeAfterUpload, uploadJob, type UploadContext } from './upload.js';
import { createUploadContext } from './uploadContext.js';
import { isInside, sameVersion } from './version.js';

export interface PipelineOptions {
  config: Config;
  store: JobStore;
  api: CryomixApi;
  logger: Logger;
}

interface WatchedFolder {
  config: FolderConfig;
  filter: PathFilter;
  intake: Intake;
  watch?: FolderWatch;
}

/**
 * The daemon's work: watched folders feed the intake, the intake files job
 * rows, the scheduler uploads queued rows. `failure` settles if the state DB
 * breaks, after which nothing may continue.
 */
export class Pipeline {
  readonly scheduler: Scheduler;
  readonly failure: Promise<unknown>;
  private readonly options: PipelineOptions;
  private readonly folders: WatchedFolder[];
  private readonly uploadContext: UploadContext;
  private fail!: (error: unknown) => void;

  constructor(options: PipelineOptions) {
    this.options = options;
    this.failure = new Promise((resolve) => {
      this.fail = resolve;
    });
    const { config, store, api, logger } = options;
    this.scheduler = new Scheduler({
      store,
      logger,
      concurrency: config.uploads.concurrency,
      authRecheckMs: config.api.authRecheckSeconds * 1000,
      upload: (job, signal) => uploadJob(job.id, this.uploadContext, signal),
      keyAccepted: async () => {
        try {
          await api.masteringProgress(crypto.randomUUID());
          return true;
        } catch (error) {
          if (error instanceof UnauthorizedError) return false;
          throw error;
        }
      },
      onFatal: (error) => this.fail(error),
    });
    this.folders = config.folders.map((folder) => this.folderFor(folder));
    this.uploadContext = createUploadContext(options, {
      onStale: (job) => this.folders.find((f) => f.config.path === job.folder)?.intake.touch(job.path),
      onUnauthorized: (error) => this.scheduler.pause(error.message),
    });
  }

  private folderFor(config: FolderConfig): WatchedFolder {
    const { store, logger } = this.options;
    const { uploads } = this.options.config;
    const inside = (dir: string | undefined) => dir !== undefined && isInside(config.path, dir);
    const filter = createPathFilter(config.path, config.ignore, [config.moveTo].filter(inside) as string[]);
    const intake = new Intake({
      folder: config.path,
      settleMs: config.settleSeconds * 1000,
      minBytes: uploads.minBytes,
      maxBytes: uploads.maxBytes,
      store,
      logger,
      onQueued: () => this.scheduler.pump(),
      onSuperseded: (job) => this.scheduler.supersede(job.id),
      onFatal: (error) => this.fail(error),
    });
    return { config, filter, intake };
  }

  /**
   * Ready means: watchers are listening, and the DB agrees with the disk,
   * because events only tell what happens from now on. Files added, changed
   * or removed while the daemon was down are found by the scan.
   */
  async start(): Promise<void> {
    await this.recoverInterrupted();
    for (const folder of this.folders) {
      folder.watch = watchFolder({
        root: folder.config.path,
        recursive: folder.config.recursive,
        // `auto` polls only once file-system detection can tell a NAS mount from a local disk.
        usePolling: folder.config.polling === 'always',
        pollIntervalMs: folder.config.pollIntervalSeconds * 1000,
        isIgnored: (path) => folder.filter.isIgnored(path),
        onPath: (path) => {
          if (folder.filter.isCandidate(path)) folder.intake.touch(path);
        },
        onError: (error) => this.options.logger.error({ err: error, folder: folder.config.path }, `watching ${folder.config.path} failed`),
      });
    }
    await Promise.all(this.folders.map((folder) => folder.watch!.ready));
    for (const folder of this.folders) await this.reconcile(folder);
    this.scheduler.start();
  }

  /**
   * A crash or kill left rows mid-flight; each resumes with its own
   * Session-Id. Waiting rows outside every configured folder (the config
   * changed) have no settle rule left to finish them.
   */
  private async recoverInterrupted(): Promise<void> {
    const { store } = this.options;
    recoverOrphanedUploads(store, () => false);
    for (const job of store.inState('uploaded')) {
      store.transition(job.id, 'done');
      await completeAfterUpload(job, this.uploadContext);
    }
    for (const job of store.inState('waiting')) {
      if (!this.folders.some((folder) => folder.config.path === job.folder)) {
        store.transition(job.id, 'removed', { error: `${job.folder} is no longer a watched folder` });
      }
    }
  }

  /**
   * Makes the DB agree with the disk. Rows are only marked removed when the
   * walk could read where they live: an unreadable or unmounted directory
   * says nothing about its files.
   */
  private async reconcile(folder: WatchedFolder): Promise<void> {
    const { store, logger } = this.options;
    const root = folder.config.path;
    const onDisk = new Set<string>();
    const unreadable: string[] = [];
    try {
      const files = walkFiles(root, {
        recursive: folder.config.recursive,
        isIgnored: (path) => folder.filter.isIgnored(path),
        onUnreadableDirectory: (dir, error) => {
          unreadable.push(dir);
          logger.error({ err: error, folder: root, directory: dir }, `cannot read ${dir}: ${(error as Error).message}; files there are not watched (give the cryomix-watch user access)`);
        },
      });
      for await (const path of files) {
        if (!folder.filter.isCandidate(path)) continue;
        onDisk.add(path);
        if (!(await isKnownUnchanged(store.current(path), path))) folder.intake.touch(path);
      }
    } catch (error) {
      if (isStoreFailure(error)) throw error;
      logger.error({ err: error, folder: root }, `cannot read the watched folder ${root}: ${(error as Error).message}; check that it exists and is mounted`);
      return;
    }
    for (const job of store.unfinished()) {
      const readable = !unreadable.some((dir) => isInside(dir, job.path));
      if (job.folder === root && readable && !onDisk.has(job.path)) folder.intake.gone(job.path, 'the file disappeared while the daemon was stopped');
    }
  }

  async stop(): Promise<void> {
    for (const folder of this.folders) {
      folder.intake.close();
      await folder.watch?.close();
    }
    await this.scheduler.stop(this.options.config.uploads.shutdownGraceSeconds * 1000);
  }

  get settling(): number {
    return this.folders.reduce((sum, folder) => sum + folder.intake.settling, 0);
  }

  get watchedFolders(): string[] {
    return this.folders.map((folder) => folder.config.path);
  }
}

/** A row that already describes this exact file version needs no second look (a waiting one does). */
async function isKnownUnchanged(job: Job | undefined, path: string): Promise<boolean> {
  if (!job || job.state === 'waiting' || job.state === 'removed') return false;
  const fileStat = await statFile(path);
  return fileStat !== null && sameVersion(job, fileStat);
}
