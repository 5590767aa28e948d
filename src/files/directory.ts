import type { Stats } from 'node:fs';
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { isPermissionDenied } from './errno.js';

/**
 * Creates `directory` and any missing parents for the studio's people, not
 * only for the user the daemon runs as: each new folder gets the group of
 * the folder it is made in, and at least its permission bits, whatever the
 * umask (a strict one would make moveTo and masters folders 0700, which the
 * engineer cannot open). Folders that already exist are left as they are.
 */
export async function ensureSharedDirectory(directory: string): Promise<void> {
  const target = resolve(directory);
  const first = await mkdir(target, { recursive: true });
  if (first === undefined) return;
  let current = dirname(first);
  const parent = await stat(current);
  for (const part of relative(current, target).split(sep)) {
    current = join(current, part);
    await giveGroup(current, parent.gid);
    const made = await stat(current);
    // Only what the umask kept back is added, never taken away: a chmod must name a set-group-ID bit (inherited from a
    // setgid parent) to keep it, and the unit's RestrictSUIDSGID= refuses that, so under its UMask=0002 none is needed.
    const missing = parent.mode & 0o1777 & ~made.mode;
    if (missing !== 0) await chmod(current, (made.mode & 0o7777) | missing);
  }
}

/**
 * Gives `path` the group `gid` where this user may: root, or a member of
 * it. Elsewhere the kernel refuses (EPERM), and the path keeps the
 * daemon's group; its permission bits alone then say who may read it.
 */
export async function giveGroup(path: string, gid: Stats['gid']): Promise<void> {
  try {
    await chown(path, -1, gid);
  } catch (error) {
    if (!isPermissionDenied(error)) throw error;
  }
}
