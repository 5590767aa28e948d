import { basename } from 'node:path';
import { DOWNLOAD_WARNING_MS } from '../cryomix/api.js';
import { STATES } from '../store/states.js';
import { configFrom, withStore, type GlobalOptions } from './context.js';
import { relativeTime, table } from '../report/format.js';
import { folderProblemLine } from '../ops/health.js';
import { followUpNote, followUpView, type FollowUpView } from '../report/jobView.js';
import { bandwidthLine, type BandwidthState } from '../pipeline/bandwidth.js';

export interface StatusReport {
  database: string;
  counts: Record<string, number>;
  paused: { reason: string; since: string } | null;
  oldestPending: { path: string; state: string; since: string } | null;
  /** Files whose masters have waited more than a day to be downloaded (the vendor deletes them after 7). */
  downloadsWaitingOverADay: number;
  /** Files being mastered right now, with the API's percentage. */
  mastering: { path: string; percent: number }[];
  /** What keeps the running daemon from watching a folder (a hung or unmounted share), one line each, as /healthz says it. */
  folderProblems: string[];
  /** After-upload steps and hooks whose last run failed, tried again by the daemon. */
  followUpsFailing: (FollowUpView & { path: string })[];
  /** The running daemon's caps in force, and why; null when no daemon runs. */
  bandwidth: BandwidthState | null;
  /** The daemons heard from in the last day (several share a PostgreSQL queue), with their last heartbeat. */
  hosts: { host: string; pid: number; startedAt: string; lastHeartbeat: string }[];
}

/** A daemon beats every few seconds: one not heard for this long is taken to be stopped. */
const SILENT_MS = 60_000;

/** Enough to see the pattern (a full disk, a read-only target); `list` has every file. */
const FAILING_SHOWN = 10;

export async function statusReport(options: GlobalOptions): Promise<StatusReport> {
  const config = configFrom(options);
  return withStore(config, 'read', async (store, location) => {
    const pause = await store.paused();
    const oldest = await store.oldestPending();
    return {
      database: location,
      counts: await store.counts(),
      paused: pause && { reason: pause.reason, since: new Date(pause.since).toISOString() },
      oldestPending: oldest ? { path: oldest.path, state: oldest.state, since: new Date(oldest.createdAt).toISOString() } : null,
      downloadsWaitingOverADay: await store.downloadsWaitingSince(Date.now() - DOWNLOAD_WARNING_MS),
      mastering: (await store.inState('mastering')).map((job) => ({ path: job.path, percent: job.masteringPercent ?? 0 })),
      folderProblems: (await store.folderStates()).flatMap(({ path, problem }) => (problem ? [folderProblemLine(path, problem)] : [])),
      followUpsFailing: (await store.failingFollowUps(FAILING_SHOWN)).map((followUp) => ({ path: followUp.path, ...followUpView(followUp) })),
      bandwidth: (await store.bandwidth()) as BandwidthState | null,
      hosts: (await store.heartbeats()).map(({ host, pid, startedAt, silentMs }) => ({
        host,
        pid,
        startedAt: new Date(startedAt).toISOString(),
        lastHeartbeat: new Date(Date.now() - silentMs).toISOString(),
      })),
    };
  });
}

export async function statusCommand(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const report = await statusReport(options);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [
    report.paused
      ? `Uploads: PAUSED since ${report.paused.since} (${relativeTime(Date.parse(report.paused.since))}): ${report.paused.reason}`
      : 'Uploads: not paused',
    ...report.folderProblems.map((line) => `Folder: ${line}`),
    ...(report.bandwidth ? [bandwidthLine(report.bandwidth)] : []),
    ...report.hosts.map(({ host, pid, lastHeartbeat }) => {
      const heard = Date.parse(lastHeartbeat);
      return `Daemon on ${host} (pid ${pid}): ${Date.now() - heard > SILENT_MS ? 'NOT HEARD' : 'heard'} ${relativeTime(heard)}`;
    }),
    '',
    table(['STATE', 'FILES'], STATES.filter((state) => report.counts[state]).map((state) => [state, String(report.counts[state])])),
  ];
  if (Object.values(report.counts).every((n) => n === 0)) lines.push('(no files seen yet)');
  if (report.mastering.length > 0) {
    lines.push('', `Mastering now: ${report.mastering.map(({ path, percent }) => `${basename(path)} ${percent}%`).join(', ')}`);
  }
  if (report.downloadsWaitingOverADay > 0) {
    lines.push('', `WARNING: the masters of ${report.downloadsWaitingOverADay} file(s) have waited more than a day to be downloaded; Cryo-mix deletes results 7 days after mastering. See "cryomix-watch list --state downloading".`);
  }
  if (report.followUpsFailing.length > 0) {
    lines.push('', 'Uploaded, but not yet finished (tried again by the daemon):', ...report.followUpsFailing.map((followUp) => `  ${followUp.path}: ${followUpNote(followUp)}`));
  }
  if (report.oldestPending) {
    const { path, state, since } = report.oldestPending;
    lines.push('', `Oldest unfinished: ${path} (${state}, first seen ${relativeTime(Date.parse(since))})`);
  }
  lines.push('', `Details per file: cryomix-watch list${options.config ? ` --config ${options.config}` : ''}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
