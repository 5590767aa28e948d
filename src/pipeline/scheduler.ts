import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { FollowUp, Job, PauseState } from '../store/job.js';
import type { JobStore } from '../store/store.js';
import { ParkedAbort, ShutdownAbort, SupersededAbort } from './aborts.js';

export interface SchedulerOptions {
  store: JobStore;
  logger: Logger;
  concurrency: number;
  /** How often a paused pipeline asks the API whether the key works again. */
  authRecheckMs: number;
  /** Picks up rows other processes changed (`retry`, `upload FILE`): the DB, not memory, is the queue. */
  pollMs?: number;
  /** An upload slot: takes the next queued job, if any is left, telling `onClaimed` which. */
  upload(signal: AbortSignal, onClaimed: (jobId: number) => void): Promise<void>;
  /** The next step of a `mastering` or `downloading` job (start, poll, download). */
  step(job: Job, signal: AbortSignal): Promise<void>;
  /** A due follow-up (an after-upload move, an onDone hook). */
  followUp(followUp: FollowUp, signal: AbortSignal): Promise<void>;
  /** Resolves true when the API accepts the key again. */
  keyAccepted(): Promise<boolean>;
  onFatal(error: unknown): void;
}

type Work = 'upload' | 'step' | 'follow-up';
interface InFlight {
  work: Work;
  controller: AbortController;
}
const uploadKey = (jobId: number) => `upload ${jobId}`;
const stepKey = (jobId: number) => `step ${jobId}`;
const followUpKey = (followUp: Pick<FollowUp, 'jobId' | 'kind'>) => `${followUp.kind} ${followUp.jobId}`;

/** The soonest the due-time timer fires; new work is pumped at once by events anyway. */
const MIN_TIMER_MS = 250;

/** After aborting, how long uploads get to record that they were interrupted. */
const ABORT_SETTLE_MS = 5_000;

function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([work.then(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Feeds queued rows to p-queue, wakes `retrying` rows when they are due, and
 * runs due mastering and download steps, and follow-ups, each on a queue
 * of their own, so a long download never takes an upload's slot, nor a slow
 * move or hook a mastering poll's. The DB is the queue: p-queue only
 * holds the few jobs about to run, so a restart loses nothing and 10,000
 * queued files cost no memory.
 */
export class Scheduler {
  private readonly options: SchedulerOptions;
  private readonly queue: PQueue;
  private readonly steps: PQueue;
  private readonly followUps: PQueue;
  /**
   * Work running or about to, by uploadKey, stepKey or followUpKey. Keyed by
   * kind of work, so that a pause can park the uploads alone; a row is in
   * one state at a time, so its upload and its step never both run.
   */
  private readonly inFlight = new Map<string, InFlight>();
  /** Set during a `pause` window of uploads.schedule: no upload runs. */
  private parkedBy: ParkedAbort | undefined;
  private pauseState: PauseState | null;
  private stopping = false;
  /** `due`: a pump runs at the end of this turn of the event loop; `filling`: one is running. */
  private pumpState: 'idle' | 'due' | 'filling' = 'idle';
  /** Something changed while a pump was running: it runs once more. */
  private pumpAgain = false;
  /** Names upload slots, which learn their job only once they claim it. */
  private slots = 0;
  /** Slots whose claim may have committed before they could say which job they hold. */
  private claiming = 0;
  /** The state database does not answer: nothing starts until it does (see Pipeline). */
  private held = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(options: SchedulerOptions) {
    this.options = options;
    this.queue = new PQueue({ concurrency: options.concurrency });
    this.steps = new PQueue({ concurrency: options.concurrency });
    this.followUps = new PQueue({ concurrency: options.concurrency });
    this.pauseState = null;
  }

  async start(): Promise<void> {
    this.pauseState = await this.options.store.paused();
    this.pollTimer = setInterval(() => this.pump(), this.options.pollMs ?? 2000).unref();
    if (this.pauseState) this.scheduleProbe();
    this.pump();
  }

  setConcurrency(concurrency: number): void {
    this.options.concurrency = concurrency;
    this.queue.concurrency = concurrency;
    this.steps.concurrency = concurrency;
    this.followUps.concurrency = concurrency;
    this.pump();
  }

  get paused(): PauseState | null {
    return this.pauseState;
  }

  /**
   * Moves due retries back to the queue and starts what fits, once the
   * events of this turn of the event loop are in: call it whenever something
   * may have changed. A burst of 10,000 files queues hundreds at a time, and
   * each pump asks the DB six questions.
   */
  pump(): void {
    if (this.stopping) return;
    if (this.pumpState === 'filling') this.pumpAgain = true;
    if (this.pumpState !== 'idle') return;
    this.pumpState = 'due';
    setImmediate(() => {
      this.fillOnce().catch((error: unknown) => this.options.onFatal(error));
    });
  }

  /** One pump at a time: each reads the queue and starts what it finds, and two at once would start a row twice. */
  private async fillOnce(): Promise<void> {
    this.pumpState = 'filling';
    try {
      if (!this.stopping) await this.fill();
    } finally {
      this.pumpState = 'idle';
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.pump();
      }
    }
  }

  private async fill(): Promise<void> {
    if (this.held) return;
    const { store, concurrency } = this.options;
    // A slot between its claim and naming its job holds a row this process does not know yet: none is judged orphaned meanwhile.
    await store.releaseOrphanedUploads((id) => this.claiming > 0 || this.inFlight.has(uploadKey(id)));
    // Conditional: `upload FILE` in another process may wake the same row.
    for (const job of await store.dueRetries(Date.now())) await store.transitionIf(job.id, 'retrying', 'queued');
    await this.armRetryTimer();
    // Steps and follow-ups another live process is working on are skipped, not retried in a loop.
    // Follow-ups make no API call: a refused key does not keep a stored file from being moved.
    const followUpRoom = concurrency - (this.followUps.size + this.followUps.pending);
    const followUps = (await store.dueFollowUps(Date.now(), followUpRoom + this.inFlight.size)).filter((due) => !this.inFlight.has(followUpKey(due)));
    for (const due of followUps.slice(0, Math.max(0, followUpRoom))) this.enqueue(this.followUps, 'follow-up', followUpKey(due), (signal) => this.options.followUp(due, signal));
    if (this.pauseState) return;
    if (!this.parkedBy) {
      // Slots not started yet will each take one of the queued jobs: as many more as there are jobs beyond those.
      const uploadRoom = concurrency * 2 - (this.queue.size + this.queue.pending);
      const unclaimed = uploadRoom > 0 ? (await store.queuedIds(uploadRoom + this.queue.size)).length - this.queue.size : 0;
      for (let slot = 0; slot < Math.min(uploadRoom, unclaimed); slot++) this.enqueueUploadSlot();
    }
    const stepRoom = concurrency - (this.steps.size + this.steps.pending);
    const steps = (await store.dueSteps(Date.now(), stepRoom + this.inFlight.size)).filter((job) => !this.inFlight.has(stepKey(job.id)));
    for (const job of steps.slice(0, Math.max(0, stepRoom))) this.enqueue(this.steps, 'step', stepKey(job.id), (signal) => this.options.step(job, signal));
  }

  /** Whether `work` may start now: follow-ups make no API call, so only a refused key or a pause window holds the rest. */
  private mayRun(work: Work): boolean {
    if (this.stopping || this.held) return false;
    if (work === 'follow-up') return true;
    return !this.pauseState && !(work === 'upload' && this.parkedBy);
  }

  /** Known by its job, once claimed, so that a changed file (supersede) or a pause can stop it. */
  private enqueueUploadSlot(): void {
    this.enqueue(this.queue, 'upload', `upload slot ${++this.slots}`, async (signal, running) => {
      let key: string | undefined;
      this.claiming++;
      try {
        await this.options.upload(signal, (jobId) => {
          key = uploadKey(jobId);
          this.inFlight.set(key, running);
          this.claiming--;
        });
      } finally {
        if (key === undefined) this.claiming--;
        // Filed and claimed again by another slot meanwhile: that entry is not this slot's to remove.
        else if (this.inFlight.get(key) === running) this.inFlight.delete(key);
      }
    });
  }

  private enqueue(queue: PQueue, work: Work, key: string, run: (signal: AbortSignal, running: InFlight) => Promise<void>): void {
    const running: InFlight = { work, controller: new AbortController() };
    this.inFlight.set(key, running);
    queue
      .add(async () => {
        if (!this.mayRun(work)) return;
        await run(running.controller.signal, running);
      })
      .catch((error: unknown) => this.options.onFatal(error))
      .finally(() => {
        this.inFlight.delete(key);
        this.pump();
      });
  }

  private async armRetryTimer(): Promise<void> {
    clearTimeout(this.retryTimer);
    const next = await this.options.store.nextDueAt();
    if (next === null) return;
    // Floored: a step that is due but cannot run yet (running, held elsewhere, paused) must not re-arm a 0 ms timer forever.
    this.retryTimer = setTimeout(() => this.pump(), Math.max(MIN_TIMER_MS, next - Date.now())).unref();
  }

  /**
   * The state database does not answer: no work starts until `release`.
   * Work running goes on while its claim holds (see holdClaim).
   */
  hold(): void {
    this.held = true;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.pump();
  }

  /** Stops the upload of a version that changed or vanished. */
  supersede(jobId: number): void {
    this.inFlight.get(uploadKey(jobId))?.controller.abort(new SupersededAbort());
  }

  /**
   * A `pause` window began (until `until`, if it ends): uploads in flight
   * stop and are queued again, not counted as attempts, and none starts
   * until `resume`.
   */
  park(why: string, until: number | null): void {
    this.parkedBy = new ParkedAbort(why, until);
    for (const { work, controller } of this.inFlight.values()) if (work === 'upload') controller.abort(this.parkedBy);
  }

  resume(): void {
    if (!this.parkedBy) return;
    this.parkedBy = undefined;
    this.pump();
  }

  /**
   * The API refused the key: every API call would fail the same way, so all
   * of them wait, while detection goes on. Persisted so `status` shows it
   * and a restart does not hammer the API with a known-bad key.
   */
  pause(reason: string): void {
    if (!this.pauseState) {
      this.pauseState = { reason, since: Date.now() };
      this.options.store.setPaused(this.pauseState).catch((error: unknown) => this.options.onFatal(error));
      this.options.logger.error({ paused: true, reason }, `uploads paused: ${reason}`);
    }
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probeTimer || this.stopping) return;
    this.probeTimer = setTimeout(() => {
      this.probe().catch((error: unknown) => this.options.onFatal(error));
    }, this.options.authRecheckMs).unref();
  }

  private async probe(): Promise<void> {
    this.probeTimer = undefined;
    let accepted = false;
    try {
      accepted = await this.options.keyAccepted();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not reach the API to recheck the key; will try again');
    }
    if (this.stopping) return;
    if (!accepted) {
      this.scheduleProbe();
      return;
    }
    this.pauseState = null;
    await this.options.store.setPaused(null);
    this.options.logger.info({ paused: false }, 'the API accepts the key again; uploads resume');
    this.pump();
  }

  /**
   * Stops taking work, lets running uploads finish for up to `graceMs`, then
   * aborts the rest; the uploader files those as `retrying`, due at once.
   * Bounded: an attempt that ignores the abort (a slow copy to moveTo) is
   * left behind, and its row, still leased to this process, is recovered on
   * the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.probeTimer);
    this.queue.clear();
    this.steps.clear();
    this.followUps.clear();
    const idle = () => Promise.all([this.queue.onIdle(), this.steps.onIdle(), this.followUps.onIdle()]);
    await within(idle(), graceMs);
    for (const { controller } of this.inFlight.values()) controller.abort(new ShutdownAbort());
    await within(idle(), ABORT_SETTLE_MS);
  }
}
