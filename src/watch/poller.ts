export interface PollerOptions {
  intervalMs: number;
  /** One look at the whole folder. Must return soon once `signal` aborts, and conclude nothing from a cut-short pass. */
  pass(signal: AbortSignal): Promise<void>;
  /** A pass threw; the next one still runs. */
  onError(error: unknown): void;
}

export interface Poller {
  /** Schedules the first pass `intervalMs` from now; a no-op once closed or already started. */
  start(): void;
  /** Stops the schedule and waits for a pass in flight to notice the abort. */
  close(): Promise<void>;
}

/**
 * Runs `pass` every `intervalMs`, counted from the end of the previous pass:
 * passes never overlap, and a slow share stretches the period instead of
 * piling passes up. It keeps no per-file state and holds no per-file watcher
 * (chokidar's polling keeps an fs.watchFile StatWatcher per file), so memory
 * is what one pass needs. Like a persistent watcher, it keeps the process alive.
 */
export function createPoller(options: PollerOptions): Poller {
  const controller = new AbortController();
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const schedule = () => {
    timer = setTimeout(run, options.intervalMs);
  };
  const run = () => {
    running = options
      .pass(controller.signal)
      .catch((error: unknown) => options.onError(error))
      .finally(() => {
        running = undefined;
        if (!controller.signal.aborted) schedule();
      });
  };
  return {
    start: () => {
      if (started || controller.signal.aborted) return;
      started = true;
      schedule();
    },
    close: async () => {
      controller.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
