import { loadLibc } from '../ops/libc.js';

/**
 * Done, except for file operations the kernel still holds on a folder that
 * does not answer (a hung share). Node would not exit before they return (it
 * waits for every thread of its pool), which may be long past systemd's stop
 * timeout or a person's patience: the process ends at once instead, with
 * `code`. Everything worth keeping is already written: the state DB commits
 * as it goes, and logs and output are written synchronously.
 */
export function exitPastStuckCalls(code: number, callsMayBeStuck: boolean, say: (line: string) => void): number {
  if (!callsMayBeStuck) return code;
  say('exiting without waiting for file operations stuck on a folder that does not answer; nothing is lost, the state is committed');
  try {
    loadLibc()._exit(code);
  } catch (error) {
    say(`cannot exit at once (${(error as Error).message}): the process ends when the folder answers`);
  }
  return code;
}
