import type { FolderProblem, FolderState, PauseState } from '../store/job.js';

/** What health is judged from, read when asked. */
export interface HealthSource {
  /** Set once the state DB failed (the daemon is stopping). */
  failure(): unknown;
  paused(): PauseState | null;
  /** Each configured folder and what keeps it from being watched right now, if anything. */
  folders(): FolderState[];
  /** Why the state DB cannot be written, or undefined when it can. */
  databaseProblem(): string | undefined;
}

export interface HealthProblem {
  reason: string;
  /**
   * The daemon itself is broken (its state DB failed), so a restart may
   * help: the systemd watchdog stops being fed. A refused key, an unmounted
   * share or a database directory made read-only are outside the daemon; a
   * restart would not fix them, only abort the uploads running meanwhile.
   */
  restartHelps: boolean;
}

/**
 * Why the daemon is not doing its job, one sentence each; empty when it is.
 * The same judgement feeds /healthz, the status page, STATUS= and the
 * systemd watchdog, so they never disagree.
 */
export function healthProblems(source: HealthSource): HealthProblem[] {
  const problems: HealthProblem[] = [];
  const failure = source.failure();
  if (failure !== undefined) {
    problems.push({ reason: `state database failed: ${failure instanceof Error ? failure.message : String(failure)}`, restartHelps: true });
  }
  const database = source.databaseProblem();
  if (database !== undefined) problems.push({ reason: database, restartHelps: false });
  const pause = source.paused();
  if (pause) problems.push({ reason: `paused: API key rejected (${pause.reason})`, restartHelps: false });
  for (const { path, problem } of source.folders()) {
    if (problem !== undefined) problems.push({ reason: folderProblemLine(path, problem), restartHelps: false });
  }
  return problems;
}

/** One folder's trouble, with how long it has lasted: the same words on /healthz, the status page, STATUS= and `status`. */
export function folderProblemLine(path: string, { problem, since }: FolderProblem, now = Date.now()): string {
  const lasted = `for ${Math.max(0, Math.round((now - since) / 1000))} s`;
  switch (problem) {
    case 'not answering':
      return `${path} has not answered ${lasted} (a hung network share?); its files wait, other folders carry on`;
    case 'unmounted':
      return `not watching ${path}: unmounted ${lasted}; its files wait for it to be mounted again`;
    case 'not there':
      return `not watching ${path}: missing or unreadable ${lasted}`;
  }
}
