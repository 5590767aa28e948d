import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { CryomixApi } from '../cryomix/api.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { openDatabase } from '../store/db.js';
import { JobStore } from '../store/jobs.js';
import { logTransitions } from './transitionLog.js';

export interface DaemonOptions {
  config: Config;
  api: CryomixApi;
  logger: Logger;
}

export interface Daemon {
  readonly pipeline: Pipeline;
  /** Settles with the error when the state DB fails; the daemon must then exit non-zero. */
  readonly failure: Promise<unknown>;
  stop(): Promise<void>;
}

/** Opens the state DB and starts the pipeline against `api`; resolves once ready (initial reconcile done). */
export async function startDaemon({ config, api, logger }: DaemonOptions): Promise<Daemon> {
  const db = openDatabase(config.state.database);
  const store = new JobStore(db, { onTransition: logTransitions(logger) });
  const pipeline = new Pipeline({ config, store, api, logger });
  try {
    await pipeline.start();
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    pipeline,
    failure: pipeline.failure,
    async stop() {
      await pipeline.stop();
      db.close();
    },
  };
}
