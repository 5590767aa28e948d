import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

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

/** The Debian mirror this machine's apt uses, so that debootstrap reaches what apt reaches. */
export function debianMirror(): string {
  const sources = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'].filter(existsSync).map((file) => readFileSync(file, 'utf8')).join('\n');
  const uri = /^URIs:\s*(\S+\/debian)\s*$/m.exec(sources)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s+bookworm\b/m.exec(sources)?.[1];
  return uri ?? 'http://deb.debian.org/debian';
}
