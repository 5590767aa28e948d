import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { afterEach } from 'vitest';

/**
 * Real mounts for the scenarios that need a file system to vanish, fill up
 * or turn read-only: a tmpfs, which only root can mount here. Tests that use
 * them skip, saying so, where `canMountTmpfs` is false.
 */
export const canMountTmpfs: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'cryomix-mount-probe-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'none', probe]).status === 0;
  if (mounted) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return mounted;
})();

/** Mounts a tmpfs over `path` for one test; whatever is still mounted is lazily unmounted after it. */
export function useTmpfs(): { mount(path: string, options?: string): void; unmount(path: string): Promise<void> } {
  const mounted: string[] = [];
  afterEach(() => {
    for (const path of mounted.splice(0)) spawnSync('umount', ['-l', path]);
  });
  return {
    mount(path, options = 'size=256m') {
      execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'none', path]);
      mounted.push(path);
    },
    async unmount(path) {
      // A daemon reading a file there (hashing it, say) keeps the mount busy for a moment, as it would an admin's umount.
      for (let attempt = 1; ; attempt++) {
        const result = spawnSync('umount', [path], { encoding: 'utf8' });
        if (result.status === 0) break;
        if (attempt === 40 || !result.stderr.includes('busy')) throw new Error(`umount ${path} failed: ${result.stderr.trim()}`);
        await setTimeout(50);
      }
      mounted.splice(mounted.indexOf(path), 1);
    },
  };
}
