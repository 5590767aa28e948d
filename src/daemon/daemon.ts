import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { CryomixApi } from '../cryomix/api.js';
import { healthProblems, type HealthProblem } from '../ops/health.js';
import { startHttpListener, type HttpListener } from '../ops/httpServer.js';
import type { DaemonMetrics } from '../ops/metrics.js';
import type { StatusPageData } from '../ops/statusPage.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { jobView } from '../report/jobView.js';
import type { Job } from '../store/job.js';
import { openStore } from '../store/open.js';
import type { JobStore } from '../store/store.js';
import { ActivityCounter, type ActivityTotals } from './activity.js';
import { logTransitions } from './transitionLog.js';

/** Files shown on the status page: a screenful on a phone, a session's worth on a desk. */
const PAGE_FILES = 50;

export interface DaemonOptions {
  config: Config;
  api: CryomixApi;
  logger: Logger;
  /**
   * The series /metrics serves: given exactly when `config.http` is set, and
   * already counting API answers (the client was built before the daemon);
   * the daemon adds the rest.
   */
  metrics?: DaemonMetrics;
}

export interface Daemon {
  readonly pipeline: Pipeline;
  /** Where the state is kept, for the log: the SQLite file or the PostgreSQL database. */
  readonly stateLocation: string;
  /** Settles with the error when the state DB fails; the daemon must then exit non-zero. */
  readonly failure: Promise<unknown>;
  health(): HealthProblem[];
  /** What moved since this start, for the summary line. */
  activity(): ActivityTotals;
  /** One line for systemd's STATUS= and `systemctl status`: "watching 3 folders, 2 uploading, 14 done today". */
  statusLine(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A burst of files commits a transition every few milliseconds. An upload
 * waits 2 ms for others to share the sync of its claim; a transition nobody
 * waits for (the intake's, a finished upload's) is synced, and logged,
 * within 50 ms, usually with the next claim.
 */
const GROUP_COMMIT = { windowMs: 2, announceWithinMs: 50 };

/** Opens the state DB and starts the pipeline against `api`; resolves once ready (initial reconcile done). */
export async function startDaemon({ config, api, logger, metrics }: DaemonOptions): Promise<Daemon> {
  if (config.http !== undefined && metrics === undefined) throw new TypeError('startDaemon: config.http is set, so metrics are needed to serve /metrics');
  const log = logTransitions(logger);
  const activity = new ActivityCounter();
  const opened = await openStore(config, {
    access: 'daemon',
    groupCommit: GROUP_COMMIT,
    onTransition: (event) => {
      log(event);
      activity.record(event);
      metrics?.recordTransition(event);
    },
  });
  const { store } = opened;
  const pipeline = new Pipeline({ config, store, api, logger, ...(metrics === undefined ? {} : { onRetry: metrics.recordRetry }) });
  let failed: unknown;
  void pipeline.failure.then((error) => {
    failed = error ?? new Error('unknown failure');
  });
  let http: HttpListener | undefined;
  try {
    await pipeline.start();
  } catch (error) {
    await opened.close();
    throw error;
  }

  const health = () =>
    healthProblems({
      failure: () => failed,
      paused: () => pipeline.paused,
      folders: () => pipeline.folderStates(),
      // A shared PostgreSQL is watched by the pipeline itself: it says when the database does not answer.
      databaseProblem: () => (config.state.postgres === undefined ? databaseProblem(config.state.database) : pipeline.storeProblem),
    });
  metrics?.attach({
    counts: () => store.counts(),
    paused: () => pipeline.paused !== null,
    oldestWaitingSince: async () => (await store.oldestPending())?.createdAt,
    folders: () => pipeline.folderStates(),
    followUpCounts: () => store.followUpCounts(),
    bandwidth: () => pipeline.bandwidthState,
  });
  const page = async (): Promise<StatusPageData> => ({
    now: Date.now(),
    problems: health().map((problem) => problem.reason),
    folders: pipeline.watchedFolders,
    counts: await store.counts(),
    files: await Promise.all((await pageFiles(store)).map((job) => jobView(job, store))),
    bandwidth: pipeline.bandwidthState,
  });

  const stop = async () => {
    await http?.close();
    await pipeline.stop();
    // The last transitions are announced (logged) once on disk.
    await opened.close();
  };
  if (config.http && metrics) {
    try {
      http = await startHttpListener({
        ...config.http.listen,
        ...(config.http.token === undefined ? {} : { token: config.http.token }),
        source: { health, metrics, page },
        onError: (error) => logger.error({ err: error }, `status page or metrics failed: ${(error as Error).message}`),
      });
    } catch (error) {
      await stop();
      throw error;
    }
    logger.info({ url: http.url }, `status page at ${http.url}/, health at /healthz, metrics at /metrics`);
  }

  return {
    pipeline,
    stateLocation: opened.location,
    failure: pipeline.failure,
    health,
    activity: () => activity.totals(),
    async statusLine() {
      const counts = await store.counts();
      const midnight = new Date().setHours(0, 0, 0, 0);
      const folders = pipeline.watchedFolders.length;
      const parts = [`watching ${folders} folder${folders === 1 ? '' : 's'}`, `${counts.uploading} uploading`];
      const waiting = counts.waiting + counts.queued + counts.retrying;
      if (waiting > 0) parts.push(`${waiting} waiting`);
      if (counts.mastering + counts.downloading > 0) parts.push(`${counts.mastering + counts.downloading} mastering`);
      parts.push(`${await store.doneSince(midnight)} done today`);
      if (counts.failed > 0) parts.push(`${counts.failed} failed`);
      const problems = health();
      return problems.length === 0 ? parts.join(', ') : `${problems.map((p) => p.reason).join('; ')} | ${parts.join(', ')}`;
    },
    stop,
  };
}

/** Cheap enough for every health probe: no lock is taken, so a busy one-shot never stalls the answer. */
function databaseProblem(database: string): string | undefined {
  for (const path of [database, dirname(database)]) {
    try {
      accessSync(path, constants.W_OK);
    } catch (error) {
      return `state database not writable: ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
  }
  return undefined;
}

/** The status page's files: those whose after-upload step or hook keeps failing first, whatever changed since, then the latest. */
async function pageFiles(store: JobStore): Promise<Job[]> {
  const files = new Map<number, Job>();
  for (const { jobId } of await store.failingFollowUps(PAGE_FILES)) files.set(jobId, await store.get(jobId));
  for (const job of await store.recent(PAGE_FILES)) files.set(job.id, job);
  return [...files.values()].slice(0, PAGE_FILES);
}
