import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import type { Logger } from 'pino';

/** A hook gets this long; a hung one is killed, the masters stay where they are. */
const HOOK_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_LINES_LOGGED = 5;

/**
 * Runs the folder's `mastering.onDone` program once the masters are in
 * place: no shell (the argv is used as written), the masters folder as the
 * last argument. Its exit status and first lines of output are logged; a
 * failing hook is reported, never turned into a failed job, since the
 * masters are already safe on disk.
 */
export function runDoneHook(argv: readonly string[], mastersDirectory: string, mix: string, logger: Logger, signal: AbortSignal): Promise<void> {
  const [program, ...args] = argv;
  if (!program) return Promise.resolve();
  return new Promise((resolve) => {
    // Stopped with the daemon: a shutdown must not wait minutes for someone's script.
    execFile(program, [...args, mastersDirectory], { timeout: HOOK_TIMEOUT_MS, maxBuffer: 1024 * 1024, signal }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.split('\n').filter((line) => line.trim() !== '').slice(0, OUTPUT_LINES_LOGGED);
      const exitCode = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      const fields = { file: mix, hook: argv, exitCode, output };
      if (error) {
        const why = signal.aborted ? 'was stopped because the daemon is stopping' : error.killed ? `was stopped after ${HOOK_TIMEOUT_MS / 1000} s` : typeof error.code === 'number' ? `exited with ${error.code}` : `could not run: ${error.message}`;
        logger.warn(fields, `${basename(mix)}: the onDone hook ${why}; the masters are in ${mastersDirectory}`);
      } else {
        logger.info(fields, `${basename(mix)}: the onDone hook ran`);
      }
      resolve();
    });
  });
}
