import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import type { Logger } from 'pino';

/** A hook gets this long; a hung one is killed, the masters stay where they are. */
const HOOK_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_LINES_LOGGED = 5;

/** What the onDone hook is run with, stored with its follow-up when the masters are in place. */
export interface DoneHook {
  argv: readonly string[];
  /** The mix's masters folder: the hook's last argument. */
  masters: string;
  mix: string;
  /** In the hook's environment as CRYOMIX_SESSION_ID: the same on a repeat, so the hook can tell. */
  sessionId: string;
}

/**
 * Runs the folder's `mastering.onDone` program: no shell (the argv is used
 * as written), the masters folder as the last argument. Its exit status and
 * first lines of output are logged; a failing hook is reported, never
 * turned into a failed job or run again, since the masters are already
 * safe on disk. Resolves false when the hook was stopped by `signal` (a
 * shutdown, a claim lost): it has not had its run, and runs again. It
 * never sees the API key.
 */
export function runDoneHook(hook: DoneHook, logger: Logger, signal: AbortSignal): Promise<boolean> {
  const [program, ...args] = hook.argv;
  if (!program) return Promise.resolve(true);
  // Not the key, nor where systemd put it: a notification script has no business with it.
  const { CRYOMIX_API_KEY: _key, CREDENTIALS_DIRECTORY: _credentials, ...inherited } = process.env;
  const env = { ...inherited, CRYOMIX_SESSION_ID: hook.sessionId, CRYOMIX_MIX: hook.mix };
  return new Promise((resolve) => {
    execFile(program, [...args, hook.masters], { timeout: HOOK_TIMEOUT_MS, maxBuffer: 1024 * 1024, signal, env }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.split('\n').filter((line) => line.trim() !== '').slice(0, OUTPUT_LINES_LOGGED);
      const exitCode = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      const fields = { file: hook.mix, sessionId: hook.sessionId, hook: hook.argv, exitCode, output };
      const name = basename(hook.mix);
      if (signal.aborted) {
        logger.warn(fields, `${name}: the onDone hook was stopped (cryomix-watch is stopping, or another process took it over); it runs again`);
        resolve(false);
        return;
      }
      if (error) {
        const why = error.killed ? `was stopped after ${HOOK_TIMEOUT_MS / 1000} s` : typeof error.code === 'number' ? `exited with ${error.code}` : `could not run: ${error.message}`;
        logger.warn(fields, `${name}: the onDone hook ${why}; the masters are in ${hook.masters}`);
      } else {
        logger.info(fields, `${name}: the onDone hook ran`);
      }
      resolve(true);
    });
  });
}
