import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { CryomixApi } from '../cryomix/api.js';
import type { JobStore } from '../store/store.js';
import { afterUploadPlan } from './afterUpload.js';
import { planFor, type MasteringContext } from './master.js';
import type { UploadContext } from './upload.js';
import { ThroughputEstimate } from './urlLifetime.js';
import type { Throttle } from '../transfer/throttle.js';

export interface UploadParts {
  config: Config;
  store: JobStore;
  api: CryomixApi;
  logger: Logger;
}

/** The caps every transfer of a process draws on (see Bandwidth). */
export interface Throttles {
  uploads: Throttle;
  downloads: Throttle;
}

/** The daemon and `upload FILE` upload with the same settings; only their reactions, and who sets their caps, differ. */
export function createUploadContext(
  parts: UploadParts,
  reactions: Pick<UploadContext, 'onStale' | 'onUnauthorized' | 'onRetry' | 'folderOf'>,
  throttles: Throttles,
): UploadContext {
  const { config, store, api, logger } = parts;
  // Settings are read at each use: a reload (SIGHUP) may change the folders and the upload settings.
  return {
    store,
    api,
    logger,
    get backoff() {
      const { retry } = parts.config.uploads;
      return { initialDelayMs: retry.initialDelaySeconds * 1000, maxDelayMs: retry.maxDelaySeconds * 1000 };
    },
    urlExpirySeconds: config.api.urlExpirySeconds,
    get stallTimeoutMs() {
      return parts.config.uploads.stallTimeoutSeconds * 1000;
    },
    throughput: new ThroughputEstimate(),
    throttle: throttles.uploads,
    get concurrency() {
      return parts.config.uploads.concurrency;
    },
    afterUpload: (job) => afterUploadPlan(parts.config.folders, job),
    masteringPlan: (job) => planFor(job, parts.config.folders),
    ...reactions,
  };
}

/** The daemon and `upload --master` run the same mastering steps; only the plan and the reaction to a refused key differ. */
export function createMasteringContext(
  { config, store, api, logger }: UploadParts,
  upload: Pick<UploadContext, 'backoff' | 'stallTimeoutMs'>,
  reactions: Pick<MasteringContext, 'plan' | 'onUnauthorized'>,
  throttles: Throttles,
): MasteringContext {
  return {
    store,
    api,
    logger,
    throttle: throttles.downloads,
    get backoff() {
      return upload.backoff;
    },
    get stallTimeoutMs() {
      return upload.stallTimeoutMs;
    },
    urlExpirySeconds: config.api.urlExpirySeconds,
    ...reactions,
  };
}
