import { mkdirSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon } from '../daemon/daemon.js';
import { announceStartup, startHeartbeat } from '../daemon/heartbeat.js';
import { createSystemdNotifier } from '../ops/systemdNotify.js';
import { createLogger, type LogFormat } from '../log/logger.js';
import type { Logger } from 'pino';
import { isInside, mastersDirectory, type Config, type FolderConfig } from '../config/index.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { apiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';
import { EXIT_FAILURE, EXIT_OK } from './exitCodes.js';
import { exitPastStuckCalls } from './stuckExit.js';

export interface RunOptions extends GlobalOptions {
  sandbox?: boolean;
  logFormat?: LogFormat;
}

/**
 * The daemon in the foreground. Resolves with the exit status: 0 after
 * SIGTERM/SIGINT once uploads are parked, 1 when the state DB failed.
 */
export async function runCommand(options: RunOptions): Promise<number> {
  const loaded = configFrom(options);
  // Prometheus series only for a /metrics to serve them: prom-client is not even loaded otherwise.
  const metrics = loaded.http === undefined ? undefined : new (await import('../ops/metrics.js')).DaemonMetrics();
  const target = await apiTarget(loaded, Boolean(options.sandbox), metrics?.recordAnswer);
  const { config } = target;
  const secrets = [target.apiKey, ...(config.http?.token ? [config.http.token] : [])];
  const logger = createLogger({ level: config.log.level, format: options.logFormat ?? 'json', secrets });
  const notifier = createSystemdNotifier();
  // The onDone hook's programs must not speak for the daemon (NotifyAccess=main would drop them anyway).
  delete process.env.NOTIFY_SOCKET;
  if (target.sandbox) {
    logger.info({ sandbox: target.sandbox.url }, `sandbox API running at ${target.sandbox.url} (no real uploads leave this machine)`);
    // The sandbox is for trying things out: make the folder to drop files into, and say so (a typo shows here).
    for (const folder of config.folders) {
      if (mkdirSync(folder.path, { recursive: true })) logger.info({ folder: folder.path }, `created ${folder.path} to watch`);
    }
  }
  // Installed before the startup scan, which can be long on a big tree: a stop then waits for it, then exits 0.
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // Until the daemon is up a reload has nothing to apply to; SIGHUP must not kill it meanwhile.
  let reload = () => logger.warn('SIGHUP during startup: ignored; send it again once the daemon is ready');
  process.on('SIGHUP', () => reload());
  // A promise nobody awaited failed: the daemon's state can no longer be trusted to be complete.
  const crashed = new Promise<unknown>((resolve) => process.once('unhandledRejection', resolve));

  let started;
  const startup = announceStartup(notifier, logger);
  try {
    started = await Promise.race([startDaemon({ config, api: target.api, logger, ...(metrics === undefined ? {} : { metrics }) }), stopRequested]);
  } catch (error) {
    await target.close();
    throw error;
  } finally {
    startup.stop();
  }
  if (typeof started === 'string') {
    // The startup scan holds no transaction across an await, so leaving now is as safe as the kill -9 the design survives.
    logger.info({ signal: started }, `${started} during startup: stopping`);
    process.exit(EXIT_OK);
  }
  const daemon = started;
  // A reload that fails half way (the state DB, realistically) leaves the daemon in no known state: stop like any DB failure.
  let failReload!: (error: unknown) => void;
  const reloadFailed = new Promise<unknown>((resolve) => {
    failReload = resolve;
  });
  let reloading = Promise.resolve();
  reload = () => {
    reloading = reloading.then(() => reloadConfig(options, loaded, config, daemon.pipeline, logger)).catch(failReload);
  };
  // Library timers never hold the process; the daemon does, even when nothing else is pending (every folder unmounted).
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  logger.info({ folders: daemon.pipeline.watchedFolders, database: daemon.stateLocation }, 'ready');
  const heartbeat = await startHeartbeat({ daemon, notifier, logger, summaryMinutes: config.log.summaryMinutes });
  // For a person reading the pretty log at a terminal (npm start); a service's journal gets the JSON 'ready' line above.
  if (options.logFormat === 'pretty') process.stderr.write(`${welcomeLine(config.folders, options.config)}\n`);

  const outcome = await Promise.race([
    stopRequested.then((signal) => ({ signal })),
    daemon.failure.then((failure) => ({ failure })),
    crashed.then((failure) => ({ failure })),
    reloadFailed.then((failure) => ({ failure })),
  ]);
  clearInterval(keepAlive);
  heartbeat.stop();
  notifier.close();
  if ('signal' in outcome) {
    logger.info({ signal: outcome.signal }, `${outcome.signal}: finishing running uploads, then stopping`);
    await daemon.stop();
    await target.close();
    logger.info('stopped');
    return exitPastStuckCalls(EXIT_OK, daemon.pipeline.callsMayBeStuck, (line) => logger.warn(line));
  }
  logger.fatal({ err: outcome.failure }, 'stopping: the state database failed or an unexpected error occurred, and no upload may be lost or sent twice');
  await daemon.stop().catch((error: unknown) => logger.error({ err: error }, 'could not stop cleanly'));
  await target.close();
  return exitPastStuckCalls(EXIT_FAILURE, daemon.pipeline.callsMayBeStuck, (line) => logger.warn(line));
}

/** The settings that changed but wait for a restart, by name: the API client, the DB, the listener and the heartbeat were built with them. */
function restartOnlyChanges(before: Config, after: Config): string[] {
  const differs = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
  const sections = (['api', 'state', 'http'] as const).filter((key) => differs(before[key], after[key]));
  const changed = differs(before.log.summaryMinutes, after.log.summaryMinutes) ? [...sections, 'log.summaryMinutes'] : sections;
  return sharedFoldersChanged(before, after) ? [...changed, 'the folders and their shares (with state.postgres)'] : changed;
}

/** With a shared queue, the store maps each folder to its share as it opens: another set of folders waits for a restart. */
function sharedFoldersChanged(before: Config, after: Config): boolean {
  const shares = (config: Config) => JSON.stringify(config.folders.map(({ path, share }) => [path, share]).sort());
  return before.state.postgres !== undefined && shares(before) !== shares(after);
}

/**
 * SIGHUP: reads the config file again. An invalid file keeps the running
 * configuration and says why. The API section stays as started (with
 * --sandbox it points at the embedded emulator); changing it needs a restart.
 */
async function reloadConfig(options: RunOptions, startedWith: Config, running: Config, pipeline: Pipeline, logger: Logger): Promise<void> {
  let next: Config;
  try {
    next = configFrom(options);
  } catch (error) {
    logger.error({ err: error }, `SIGHUP: keeping the running configuration: ${(error as Error).message}`);
    return;
  }
  const waiting = restartOnlyChanges(startedWith, next);
  if (waiting.length > 0) logger.warn({ changes: waiting }, `SIGHUP: changes to ${waiting.join(', ')} take effect at the next start`);
  const level = next.log.level === logger.level ? [] : [`log.level is now ${next.log.level}`];
  logger.level = next.log.level;
  const folders = sharedFoldersChanged(startedWith, next) ? running.folders : next.folders;
  const changes = [...(await pipeline.reload({ ...next, api: running.api, state: running.state, folders })), ...level];
  logger.info({ changes }, `SIGHUP: configuration reloaded${changes.length > 0 ? `: ${changes.join('; ')}` : ' (nothing it can apply changed)'}`);
}

function welcomeLine(folders: readonly FolderConfig[], configFile: string | undefined): string {
  const cwd = process.cwd();
  const inWorkingDirectory = (path: string) => cwd !== '/' && isInside(cwd, path);
  const shown = (path: string) => (inWorkingDirectory(path) ? `./${relative(cwd, path)}` : path);
  const where = folders.map((folder) => (folder.mastering ? `${shown(folder.path)} (mastered into ${shown(mastersDirectory(folder))})` : shown(folder.path)));
  // npx finds the command in a checkout; an installed one is on the PATH.
  const command = inWorkingDirectory(fileURLToPath(import.meta.url)) ? 'npx cryomix-watch' : 'cryomix-watch';
  const status = `${command} status${configFile ? ` --config ${configFile}` : ''}`;
  return `cryomix-watch is watching ${where.join(', ')} — drop WAV or MP3 files there, then see what happened with: ${status}`;
}
