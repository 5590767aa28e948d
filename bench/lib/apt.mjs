import { execFileSync } from 'node:child_process';
import { runTimed } from './proc.mjs';

/** Whether `command` is on PATH. */
export function has(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes what `present()` checks for available, installing Debian's
 * `packages` with apt-get when it is missing and this is root (apt-get
 * update once if the first try fails). Returns why it cannot be had, for a
 * SKIP row, or undefined once it is there. `what` names it for the log and
 * the reason: "inotifywait (inotify-tools), for the baseline".
 */
export async function aptEnsure({ present, packages, what, log }) {
  if (present()) return undefined;
  const command = `apt-get install ${packages.join(' ')}`;
  if (process.getuid?.() !== 0) return `${what} is missing and this is not root, so it cannot be installed: ${command}`;
  if (!has('apt-get')) return `${what} is missing and there is no apt-get to install it with (${command})`;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => runTimed('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, timeoutMs: 600_000 });
  log(`installing ${what} with apt-get`);
  let result = await install();
  if (result.code !== 0) {
    log('apt-get install failed; apt-get update, then once more');
    await runTimed('apt-get', ['update'], { env, timeoutMs: 300_000 });
    result = await install();
  }
  if (result.code !== 0 || !present()) return `could not install ${what} (${command}): ${result.stderr.trim().split('\n').at(-1)}`;
  return undefined;
}
