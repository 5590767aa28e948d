import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { afterEach } from 'vitest';
import { aptProvide } from '../helpers/apt.js';

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

/** A FUSE pass-through mount standing for a NAS share: changes made in `backing` raise no inotify event on it. */
export interface FuseShare {
  /** The mount point the daemon watches. */
  readonly path: string;
  /** Where "another machine" writes: the share's own disk. */
  readonly backing: string;
  /** The share's server stops answering (SIGSTOP): every call on the mount blocks in the kernel. */
  freeze(): void;
  thaw(): void;
  /** Unmounted cleanly, leaving the empty mount point; `mount` brings it back with the same files. */
  unmount(): Promise<void>;
  /** The share's server dies (SIGKILL): calls on the mount fail with ENOTCONN until it is mounted again. */
  kill(): Promise<void>;
  /** Mounted again (after `unmount` or `kill`), with the same files. */
  mount(): Promise<void>;
}

/** Why bindfs cannot be used here, or undefined when it can (installed by apt if missing, as root). */
export function bindfsUnavailable(): string | undefined {
  if (!existsSync('/dev/fuse')) return 'there is no /dev/fuse';
  return aptProvide(['bindfs'], ['bindfs']);
}

/**
 * bindfs mounts, each unmounted (and its server woken and killed) after the
 * test whatever happened. bindfs runs in the foreground as our child, so its
 * pid is the one to freeze.
 */
export function useBindfs(): { share(backing: string, path: string): Promise<FuseShare> } {
  const servers = new Map<string, ChildProcess>();
  const stopServer = (path: string) => {
    const server = servers.get(path);
    servers.delete(path);
    server?.kill('SIGCONT');
    spawnSync('umount', ['-l', path]);
    server?.kill('SIGKILL');
  };
  afterEach(() => {
    for (const path of [...servers.keys()]) stopServer(path);
  });
  const start = async (backing: string, path: string) => {
    const server = spawn('bindfs', ['-f', backing, path], { stdio: 'ignore' });
    servers.set(path, server);
    for (let waited = 0; !isMountPoint(path); waited += 20) {
      if (waited > 10_000 || server.exitCode !== null) throw new Error(`bindfs ${backing} ${path} did not mount (exit ${server.exitCode})`);
      await setTimeout(20);
    }
    return server;
  };
  return {
    async share(backing, path) {
      mkdirSync(backing, { recursive: true });
      mkdirSync(path, { recursive: true });
      await start(backing, path);
      return {
        path,
        backing,
        freeze: () => servers.get(path)?.kill('SIGSTOP'),
        thaw: () => servers.get(path)?.kill('SIGCONT'),
        async unmount() {
          const server = servers.get(path);
          execFileSync('umount', [path]);
          servers.delete(path);
          if (server && server.exitCode === null) await new Promise((resolve) => server.once('exit', resolve));
        },
        async kill() {
          const server = servers.get(path);
          server?.kill('SIGKILL');
          if (server && server.exitCode === null && server.signalCode === null) await new Promise((resolve) => server.once('exit', resolve));
        },
        async mount() {
          // A killed server leaves its mount behind, answering ENOTCONN: gone first.
          if (isMountPoint(path)) spawnSync('umount', ['-l', path]);
          await start(backing, path);
        },
      };
    },
  };
}

function isMountPoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}
