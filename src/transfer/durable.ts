import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { errnoCode } from '../files/errno.js';

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
