import { constants } from 'node:fs';
import { chmod, mkdir, open } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { errnoCode } from '../files/errno.js';

/**
 * Creates `directory` and any missing parents with mode 0755, whatever the
 * umask: downloaded masters are for the studio's users, not only for the
 * user the daemon runs as. Folders that already exist are left as they are.
 */
export async function ensureDirectory(directory: string): Promise<void> {
  const target = resolve(directory);
  const first = await mkdir(target, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  const below = relative(first, target);
  if (below.startsWith('..') || isAbsolute(below)) return;
  let current = first;
  await chmod(current, 0o755);
  for (const part of below.split(sep).filter((segment) => segment !== '')) {
    current = join(current, part);
    await chmod(current, 0o755);
  }
}

/** fsync(2) on a file that is already closed, through a read-only descriptor. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Makes the names in a directory durable (a new link, a removed file).
 * Some file systems (SMB, some FUSE mounts) cannot fsync a directory and
 * say EINVAL; there is nothing stronger to ask of them, so that is not an
 * error.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } catch (error) {
    const code = errnoCode(error);
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}
