import type { Logger } from 'pino';
import type { ActivityTotals } from './activity.js';
import type { SystemdNotifier } from '../ops/systemdNotify.js';
import { formatBytes } from '../report/format.js';
import type { Daemon } from './daemon.js';

/** How often `systemctl status` gets a fresh STATUS= line. */
const STATUS_INTERVAL_MS = 10_000;

export interface HeartbeatOptions {
  daemon: Daemon;
  notifier: SystemdNotifier;
  logger: Logger;
  /** 0: no summary lines. */
  summaryMinutes: number;
}

export interface Heartbeat {
  /** Tells systemd the daemon is stopping, and stops the timers. */
  stop(): void;
}

/** While starting, how often systemd is asked for more time, how much, and for how long at most. */
const EXTEND_EVERY_MS = 20_000;
const EXTEND_BY_USEC = 60_000_000;
const EXTEND_AT_MOST_MS = 60 * 60_000;

/**
 * The first reconcile walks every folder, which on a NAS share with 100k
 * files takes minutes: while it runs, systemd's start timeout is pushed
 * back bit by bit, for an hour at most, so a start stuck on a hung share
 * still fails, and is restarted.
 */
export function announceStartup(notifier: SystemdNotifier, logger: Logger): { stop(): void } {
  if (!notifier.enabled) return { stop: () => undefined };
  const extend = () => {
    try {
      notifier.notify({ EXTEND_TIMEOUT_USEC: String(EXTEND_BY_USEC), STATUS: 'starting: comparing the watched folders with the state database' });
    } catch (error) {
      logger.warn({ err: error }, `could not ask systemd for more time to start: ${(error as Error).message}`);
    }
  };
  const until = Date.now() + EXTEND_AT_MOST_MS;
  extend();
  const timer = setInterval(() => {
    if (Date.now() < until) extend();
  }, EXTEND_EVERY_MS).unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * What the daemon says about itself while it runs: READY=1 once started,
 * STATUS= lines, WATCHDOG=1 while it is able to do its job, and a summary
 * log line every few minutes while files move, so a busy day reads as a
 * dozen lines, not thousands.
 */
export async function startHeartbeat({ daemon, notifier, logger, summaryMinutes }: HeartbeatOptions): Promise<Heartbeat> {
  let notifyFailing = false;
  /** False when systemd could not be told. */
  const notify = (state: Record<string, string>): boolean => {
    try {
      notifier.notify(state);
      notifyFailing = false;
      return true;
    } catch (error) {
      // Once per outage: a gone socket would otherwise repeat this every few seconds.
      if (!notifyFailing) logger.warn({ err: error }, `could not tell systemd how the daemon is: ${(error as Error).message}`);
      notifyFailing = true;
      return false;
    }
  };
  // Read from timers: a state DB that fails meanwhile must not throw there (the daemon's own failure path stops it).
  const statusLine = () => daemon.statusLine().catch((error: unknown) => `state database unreadable: ${(error as Error).message}`);
  // Not without systemd: the line costs two scans of the jobs table (~0.1 s over 100k rows), right as the first new files are queued.
  const initial = notifier.enabled ? await statusLine() : '';
  let ready = notify({ READY: '1', STATUS: initial });
  let last = ready ? initial : '';
  const timers: NodeJS.Timeout[] = [];
  if (notifier.enabled) {
    timers.push(
      setInterval(() => {
        void statusLine().then((status) => {
          if (ready && status === last) return;
          // Said again until systemd has it: without READY=1 it kills the daemon at its start timeout, and a missed STATUS stays stale.
          if (notify(ready ? { STATUS: status } : { READY: '1', STATUS: status })) {
            ready = true;
            last = status;
          }
        });
      }, STATUS_INTERVAL_MS),
    );
  }
  if (notifier.watchdogIntervalMs !== undefined) {
    // A missed ping makes systemd restart us: only worth it when a restart can help (see HealthProblem).
    timers.push(
      setInterval(() => {
        if (!needsRestart(daemon)) notify({ WATCHDOG: '1' });
      }, notifier.watchdogIntervalMs),
    );
  }
  if (summaryMinutes > 0) {
    let previous = daemon.activity();
    timers.push(
      setInterval(() => {
        const now = daemon.activity();
        const before = previous;
        previous = now;
        void statusLine().then((status) => {
          const line = summaryLine(before, now, status, summaryMinutes);
          if (line) logger.info({ event: 'summary' }, line);
        });
      }, summaryMinutes * 60_000),
    );
  }
  for (const timer of timers) timer.unref();
  return {
    stop() {
      for (const timer of timers) clearInterval(timer);
      notify({ STOPPING: '1', STATUS: 'stopping: finishing running uploads' });
    },
  };
}

/** Judging health failed (the state DB, read): that is itself a reason to let systemd restart us. */
function needsRestart(daemon: Daemon): boolean {
  try {
    return daemon.health().some((problem) => problem.restartHelps);
  } catch {
    return true;
  }
}

/** Undefined when nothing moved in the window: an idle daemon stays quiet. */
export function summaryLine(before: ActivityTotals, now: ActivityTotals, status: string, minutes: number): string | undefined {
  const done = now.filesDone - before.filesDone;
  const bytes = now.bytesUploaded - before.bytesUploaded;
  const failures = now.failures - before.failures;
  if (done === 0 && bytes === 0 && failures === 0) return undefined;
  return `last ${minutes} min: ${done} file${done === 1 ? '' : 's'} done, ${formatBytes(bytes)} uploaded, ${failures} failed; now ${status}`;
}
