import { constants, type Stats } from 'node:fs';
import { lchown, mkdir, open, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { errnoCode, nullIfGone } from './errno.js';

/**
 * What a share may answer when asked to change a group or a mode it does
 * not keep (a group this user is not in, a CIFS or FUSE mount, NFS id
 * mapping, a read-only one): the path then keeps what the share gives it.
 */
const SETTING_REFUSED = new Set(['EPERM', 'EACCES', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EROFS']);

async function unlessRefused(change: Promise<void>): Promise<void> {
  try {
    await change;
  } catch (error) {
    if (!SETTING_REFUSED.has(errnoCode(error) ?? '')) throw error;
  }
}

/**
 * Creates `directory` and any missing parents for the studio's people, not
 * only for the user the daemon runs as: each new folder is made with the
 * permission bits of the folder it is made in, gets its group, and gets back
 * what a strict umask kept from it (a 0700 folder the engineer cannot open).
 * Never more than the parent allows. Folders that already exist are left
 * as they are.
 */
export async function ensureSharedDirectory(directory: string): Promise<void> {
  const target = resolve(directory);
  let base = target;
  while ((await stat(base).catch(nullIfGone)) === null) base = dirname(base);
  if (base === target) return;
  const parent = await stat(base);
  const first = await mkdir(target, { recursive: true, mode: parent.mode & 0o777 });
  // Made by someone else meanwhile: theirs to shape.
  if (first === undefined) return;
  let current = dirname(first);
  for (const part of relative(current, target).split(sep)) {
    current = join(current, part);
    await shareLike(current, parent);
  }
}

/**
 * Through a descriptor that refuses a symbolic link, and only for a folder
 * this user owns: a share user who swaps the new folder for a link must not
 * get the state directory's group and mode changed instead.
 */
async function shareLike(path: string, parent: Stats): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const made = await handle.stat();
    if (made.uid !== process.getuid?.()) return;
    await unlessRefused(handle.chown(-1, parent.gid));
    const missing = parent.mode & 0o777 & ~made.mode;
    // Named with the set-group-ID bit a setgid parent gave it, or chmod would clear it; under the unit's
    // RestrictSUIDSGID= that is refused, but its UMask=0002 leaves nothing missing there.
    if (missing !== 0) await unlessRefused(handle.chmod((made.mode & 0o7777) | missing));
  } finally {
    await handle.close();
  }
}

/** Gives `path` (not what a link there points to) the group `gid`, where the share and this user may. */
export async function giveGroup(path: string, gid: Stats['gid']): Promise<void> {
  await unlessRefused(lchown(path, -1, gid));
}
