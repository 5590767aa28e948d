import { spawnSync } from 'node:child_process';

const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;

/**
 * Makes `commands` available, installing Debian's `packages` with apt when
 * one is missing (as root; apt-get update once if the first try fails).
 * Returns why they cannot be had, or undefined when they are there.
 */
export function aptProvide(commands: readonly string[], packages: readonly string[]): string | undefined {
  if (commands.every(has)) return undefined;
  const wanted = `${commands.join(', ')} (apt-get install ${packages.join(' ')})`;
  if (process.getuid?.() !== 0) return `${wanted} is missing and this is not root, so it cannot be installed`;
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { encoding: 'utf8', timeout: 600_000 });
  let installed = install();
  if (installed.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { timeout: 600_000 });
    installed = install();
  }
  if (installed.status !== 0 || !commands.every(has)) return `${wanted} is missing and could not be installed: ${(installed.stderr ?? String(installed.error)).trim().split('\n').at(-1)}`;
  return undefined;
}
