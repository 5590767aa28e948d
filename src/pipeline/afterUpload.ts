import type { Stats } from 'node:fs';
import { lstat, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { FolderConfig } from '../config/index.js';
import { CryomixWatchError } from '../errors.js';
import { placeAtFreeName } from '../files/place.js';
import type { Job } from '../store/job.js';
import type { FileStat } from '../watch/settle.js';
import { errnoCode } from '../files/errno.js';
import { sameVersion } from './version.js';

export type AfterUpload = { action: 'keep' } | { action: 'delete' } | { action: 'move'; folder: string; moveTo: string };

/** The file at the path is no longer the bytes that were uploaded, so it is left alone. */
export class NotTheUploadedVersionError extends CryomixWatchError {
  constructor(path: string) {
    super('NOT_UPLOADED_VERSION', `${path} changed after its upload, so it was left in place; the new version is uploaded on its own`);
  }
}

/** The folder's `afterUpload` setting for a job; files outside every folder (`upload FILE`) are kept. */
export function afterUploadPlan(folders: readonly FolderConfig[], job: Job): AfterUpload {
  const folder = folders.find((f) => f.path === job.folder);
  if (!folder || folder.afterUpload === 'keep') return { action: 'keep' };
  if (folder.afterUpload === 'delete') return { action: 'delete' };
  return { action: 'move', folder: folder.path, moveTo: folder.moveTo! };
}

/**
 * What happens to the studio's file once its bytes are safely stored. Only
 * the version that was uploaded is ever moved or deleted: a re-export that
 * replaced it meanwhile must not be lost. Returns where the file now is, or
 * null when it was deleted or was already gone.
 */
export async function applyAfterUpload(path: string, plan: AfterUpload, uploaded: FileStat): Promise<string | null> {
  if (plan.action === 'keep') return path;
  let before;
  try {
    before = await lstat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw error;
  }
  if (!sameVersion(before, uploaded)) throw new NotTheUploadedVersionError(path);
  if (plan.action === 'delete') {
    await unlink(path);
    return null;
  }
  return moveWithoutOverwrite(path, join(plan.moveTo, relative(plan.folder, path)), before);
}

/**
 * Places the file under `target` (or a free variant of that name), then
 * removes the original, only while it is still the same file.
 */
async function moveWithoutOverwrite(path: string, target: string, original: Stats): Promise<string> {
  const placed = await placeAtFreeName(path, target);
  // A slow copy across file systems gives a re-export time to start; then the copy may hold its bytes, not ours.
  const now = await lstat(path);
  if (now.ino !== original.ino || !sameVersion(now, original)) {
    await unlink(placed);
    throw new NotTheUploadedVersionError(path);
  }
  await unlink(path);
  return placed;
}
