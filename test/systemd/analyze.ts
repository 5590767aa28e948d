import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHIPPED_UNIT = fileURLToPath(new URL('../../systemd/cryomix-watch.service', import.meta.url));
const SHIPPED_EXEC = '/usr/local/bin/cryomix-watch';

/** Why systemd-analyze cannot be used here, or undefined when it can. */
export function analyzeUnavailable(): string | undefined {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error) return 'systemd-analyze is missing (apt-get install systemd; systemd need not be running)';
  if (probe.status !== 0) return `systemd-analyze --version failed: ${probe.stderr.trim()}`;
  return undefined;
}

/**
 * `systemd-analyze verify` checks that ExecStart= is executable, and the
 * shipped unit names the installed launcher. So verify a copy, in `dir`,
 * whose ExecStart= names a stub that exists, as the installer rewrites it
 * for its --prefix; every other line is the shipped one. Drop-ins go in
 * `<returned path>.d/`, where verify finds them.
 */
export function shippedUnitRunnable(dir: string, unit = SHIPPED_UNIT, exec = SHIPPED_EXEC): string {
  const stub = join(dir, 'bin', 'cryomix-watch');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  writeFileSync(stub, '#!/bin/sh\n');
  chmodSync(stub, 0o755);
  const text = readFileSync(unit, 'utf8');
  if (!text.includes(`\nExecStart=${exec} `)) throw new Error(`${unit}: expected ExecStart=${exec} …`);
  const copy = join(dir, 'cryomix-watch.service');
  writeFileSync(copy, text.replace(`\nExecStart=${exec} `, `\nExecStart=${stub} `));
  return copy;
}

/** The "Overall exposure level" number of `systemd-analyze security --offline=true`. */
export function exposureLevel(unit: string): { level: number; report: string } {
  const run = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
  const report = run.stdout + run.stderr;
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(report);
  if (!match) throw new Error(`no exposure level in:\n${report}`);
  return { level: Number(match[1]), report };
}
