import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

let probed: string | undefined | null = null;

/**
 * Why bind mounts cannot be made here, or undefined when they can. Only
 * root may `mount --bind`; a container may forbid even root. Probed once.
 */
export function bindMountUnavailable(): string | undefined {
  if (probed !== null) return probed;
  if (process.getuid?.() !== 0) return (probed = 'mount --bind needs root');
  const probe = mkdtempSync(join(tmpdir(), 'cryomix-bind-probe-'));
  const target = join(probe, 'target');
  mkdirSync(target);
  const result = spawnSync('mount', ['--bind', probe, target], { encoding: 'utf8' });
  if (result.status === 0) spawnSync('umount', [target]);
  rmSync(probe, { recursive: true, force: true });
  probed = result.status === 0 ? undefined : `mount --bind failed: ${(result.stderr || String(result.error)).trim()}`;
  return probed;
}

/**
 * One directory seen at several paths, as a NAS share is mounted at a
 * different path on each machine. Every mount made during a test is lazily
 * unmounted after it, whatever happened; register this before the hooks
 * whose teardown must come first (daemons reading the mounts).
 */
export function useBindMounts(): { mount(source: string, target: string): void } {
  const mounted: string[] = [];
  afterEach(() => {
    for (const target of mounted.splice(0).reverse()) spawnSync('umount', ['-l', target]);
  });
  return {
    mount(source, target) {
      mkdirSync(target, { recursive: true });
      execFileSync('mount', ['--bind', source, target]);
      mounted.push(target);
    },
  };
}
