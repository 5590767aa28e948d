import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApiAnswer } from '../cryomix/client.js';
import type { BandwidthState } from '../pipeline/bandwidth.js';
import type { RetryReason } from '../pipeline/upload.js';
import { activityOf, FOLDER_PROBLEMS, FOLLOW_UP_KINDS, type FolderState, type FollowUpKind, type TransitionEvent } from '../store/job.js';
import { STATES, type State } from '../store/states.js';

const PREFIX = 'cryomix_watch_';

/** What the metrics read from the daemon when scraped: the DB holds the truth, so nothing is counted twice. */
export interface MetricsSource {
  counts(): Promise<Record<State, number>>;
  paused(): boolean;
  /** When the oldest file still waiting to be uploaded was first seen (epoch ms). */
  oldestWaitingSince(): Promise<number | undefined>;
  folders(): FolderState[];
  followUpCounts(): Promise<{ kind: FollowUpKind; pending: number; failing: number }[]>;
  bandwidth(): BandwidthState;
}

/**
 * The daemon's Prometheus series, behind /metrics: made only when `http` is
 * configured (loading prom-client takes ~40 ms). Counters move on events (a
 * transition, an API answer, a retry); gauges about files are read from the
 * DB at scrape time. Its own registry, so tests and the one-shot CLI never
 * share series.
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private readonly bytesUploaded: Counter;
  private readonly uploadDuration: Histogram;
  private readonly filesDone: Counter;
  private readonly failures: Counter;
  private readonly retries: Counter<'reason'>;
  private readonly apiResponses: Counter<'endpoint' | 'code'>;
  private readonly lastUpload: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    const metrics = this;
    new Gauge({
      name: `${PREFIX}files`,
      help: 'Files (current versions) by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await metrics.source?.counts();
        for (const state of STATES) this.set({ state }, counts?.[state] ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'Files waiting for an upload slot (queued or retrying)',
      registers,
      async collect() {
        const counts = await metrics.source?.counts();
        this.set((counts?.queued ?? 0) + (counts?.retrying ?? 0));
      },
    });
    new Gauge({
      name: `${PREFIX}paused`,
      help: '1 while all API work is paused because the API refused the key',
      registers,
      collect() {
        this.set(metrics.source?.paused() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}oldest_waiting_seconds`,
      help: 'Age of the oldest file not yet uploaded (0 when none)',
      registers,
      async collect() {
        const since = await metrics.source?.oldestWaitingSince();
        this.set(since === undefined ? 0 : Math.max(0, (Date.now() - since) / 1000));
      },
    });
    new Gauge({
      name: `${PREFIX}folder_problem_seconds`,
      help: 'How long each watched folder has not answered, been unmounted or not there (0 while it is watched)',
      labelNames: ['folder', 'problem'],
      registers,
      collect() {
        this.reset();
        for (const { path, problem } of metrics.source?.folders() ?? []) {
          for (const kind of FOLDER_PROBLEMS) {
            this.set({ folder: path, problem: kind }, problem?.problem === kind ? Math.max(0, (Date.now() - problem.since) / 1000) : 0);
          }
        }
      },
    });
    new Gauge({
      name: `${PREFIX}follow_ups_pending`,
      help: 'After-upload moves or deletes and onDone hooks still due, by kind; failing="true": their last run failed',
      labelNames: ['kind', 'failing'],
      registers,
      async collect() {
        const counts = (await metrics.source?.followUpCounts()) ?? [];
        for (const kind of FOLLOW_UP_KINDS) {
          const { pending = 0, failing = 0 } = counts.find((count) => count.kind === kind) ?? {};
          this.set({ kind, failing: 'true' }, failing);
          this.set({ kind, failing: 'false' }, pending - failing);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}upload_limit_bytes_per_second`,
      help: 'The upload cap in force (+Inf: none, 0: paused), with why: base or the uploads.schedule window',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const state = metrics.source?.bandwidth();
        if (state) this.set({ reason: state.reason }, state.limit === 'pause' ? 0 : (state.limit ?? Infinity));
      },
    });
    new Gauge({
      name: `${PREFIX}upload_limit_next_change_timestamp_seconds`,
      help: 'When the upload cap next changes by uploads.schedule (Unix time; 0: never)',
      registers,
      collect() {
        this.set((metrics.source?.bandwidth().nextChangeAt ?? 0) / 1000);
      },
    });
    new Gauge({
      name: `${PREFIX}download_limit_bytes_per_second`,
      help: "The masters' download cap (+Inf: none)",
      registers,
      collect() {
        this.set(metrics.source?.bandwidth().downloadLimit ?? Infinity);
      },
    });
    this.lastUpload = new Gauge({
      name: `${PREFIX}last_upload_timestamp_seconds`,
      help: 'When the last upload was stored (Unix time); absent until one is, since this start',
      registers,
    });
    this.bytesUploaded = new Counter({ name: `${PREFIX}uploaded_bytes_total`, help: 'Bytes of files stored by uploads', registers });
    this.uploadDuration = new Histogram({
      name: `${PREFIX}upload_duration_seconds`,
      help: 'Time from the start of an upload attempt to storage confirming it',
      // Mixes are 1 MB to 1 GB: seconds on a LAN to the better part of an hour on a slow uplink.
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.filesDone = new Counter({ name: `${PREFIX}files_done_total`, help: 'Files that reached done', registers });
    this.failures = new Counter({ name: `${PREFIX}files_failed_total`, help: 'Files that reached failed', registers });
    this.retries = new Counter({
      name: `${PREFIX}retries_total`,
      help: 'Upload attempts that will be retried, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.apiResponses = new Counter({
      name: `${PREFIX}api_responses_total`,
      help: 'Answers of the Cryo-mix API by endpoint and HTTP status (code="none": no answer)',
      labelNames: ['endpoint', 'code'],
      registers,
    });
  }

  /** The daemon, once it is running. Until then file gauges read 0. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  readonly recordAnswer = (answer: ApiAnswer): void => {
    this.apiResponses.inc({ endpoint: answer.endpoint, code: answer.statusCode === undefined ? 'none' : String(answer.statusCode) });
  };

  readonly recordRetry = (_job: unknown, reason: RetryReason): void => {
    this.retries.inc({ reason });
  };

  readonly recordTransition = (event: TransitionEvent): void => {
    const { stored, done, failed } = activityOf(event);
    if (stored) {
      this.bytesUploaded.inc(event.job.size);
      this.uploadDuration.observe(event.durationMs / 1000);
      this.lastUpload.set(Date.now() / 1000);
    }
    if (done) this.filesDone.inc();
    if (failed) this.failures.inc();
  };
}
