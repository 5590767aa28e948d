import type { Stats } from 'node:fs';
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { isPermissionDenied } from './errno.js';

/**
 * Creates `directory` and any missing parents for the studio's people, not
 * only for the user the daemon runs as: each new folder takes the
 * permission bits (setgid too) and group of the folder it is made in,
 * whatever the umask. The service's UMask=0077 alone would make moveTo and
 * masters folders 0700, which the engineer cannot open. Folders that
 * already exist are left as they are.
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
    // After the group: a chown may clear the setgid bit.
    await chmod(current, parent.mode & 0o3777);
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
