import { mkdirSync } from 'node:fs';
import { relative } from 'node:path';
import { startDaemon } from '../daemon/daemon.js';
import { createLogger, type LogFormat } from '../log/logger.js';
import { isInside } from '../pipeline/version.js';
import { apiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';
import { EXIT_FAILURE, EXIT_OK } from './exitCodes.js';

export interface RunOptions extends GlobalOptions {
  sandbox?: boolean;
  logFormat?: LogFormat;
}

/**
 * The daemon in the foreground. Resolves with the exit status: 0 after
 * SIGTERM/SIGINT once uploads are parked, 1 when the state DB failed.
 */
export async function runCommand(options: RunOptions): Promise<number> {
  const target = await apiTarget(configFrom(options), Boolean(options.sandbox));
  const { config } = target;
  const logger = createLogger({ level: config.log.level, format: options.logFormat ?? 'json', secrets: [target.apiKey] });
  if (target.sandbox) {
    logger.info({ sandbox: target.sandbox.url }, `sandbox API running at ${target.sandbox.url} (no real uploads leave this machine)`);
    // The sandbox is for trying things out: make the folder to drop files into.
    for (const folder of config.folders) mkdirSync(folder.path, { recursive: true });
  }
  let daemon;
  try {
    daemon = await startDaemon({ config, api: target.api, logger });
  } catch (error) {
    await target.close();
    throw error;
  }
  logger.info({ folders: daemon.pipeline.watchedFolders, database: config.state.database }, 'ready');
  process.stderr.write(`${welcomeLine(daemon.pipeline.watchedFolders, options.config)}\n`);

  const signal = await new Promise<NodeJS.Signals | { failure: unknown }>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
    void daemon.failure.then((failure) => resolve({ failure }));
    // Config reload arrives with the operations work; until then SIGHUP must not kill uploads in flight.
    process.on('SIGHUP', () => logger.warn('SIGHUP: reloading the configuration is not supported yet; restart the service to apply changes'));
  });
  if (typeof signal === 'string') {
    logger.info({ signal }, `${signal}: finishing running uploads, then stopping`);
    await daemon.stop();
    await target.close();
    logger.info('stopped');
    return EXIT_OK;
  }
  logger.fatal({ err: signal.failure }, 'the state database failed; stopping so that no upload is lost or sent twice');
  await daemon.stop().catch((error: unknown) => logger.error({ err: error }, 'could not stop cleanly'));
  await target.close();
  return EXIT_FAILURE;
}

function welcomeLine(folders: string[], configFile: string | undefined): string {
  const where = folders.map((folder) => (isInside(process.cwd(), folder) ? `./${relative(process.cwd(), folder)}` : folder));
  const status = `npx cryomix-watch status${configFile ? ` --config ${configFile}` : ''}`;
  return `cryomix-watch is watching ${where.join(', ')} — drop WAV or MP3 files there, then see what happened with: ${status}`;
}
