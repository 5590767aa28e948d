import { spawnSync } from 'node:child_process';
import { aptProvide } from './apt.js';

/**
 * The environment that runs a process under a wrong wall clock: libfaketime
 * preloaded with `offset` ("+1200s"). The `faketime` command would fork and
 * hold the process as its child, where a test's signals do not reach it;
 * the library alone leaves the pid the daemon's. Returns why it cannot
 * where libfaketime cannot be had.
 */
export function wrongClockEnv(offset: string): NodeJS.ProcessEnv | string {
  const unavailable = aptProvide(['faketime'], ['faketime']);
  if (unavailable !== undefined) return unavailable;
  const files = spawnSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' }).stdout ?? '';
  const library = files.split('\n').find((file) => file.endsWith('/libfaketime.so.1'));
  if (library === undefined) return 'faketime is installed but libfaketime.so.1 was not found (dpkg -L libfaketime)';
  return { LD_PRELOAD: library, FAKETIME: offset, FAKETIME_DONT_RESET: '1' };
}
