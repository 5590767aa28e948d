import type { Stats } from 'node:fs';
import { lstat, rm, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { FolderConfig } from '../config/index.js';
import { CryomixWatchError } from '../errors.js';
import { directly, type FileOperations } from '../files/folderGate.js';
import { placeAtFreeName } from '../files/place.js';
import type { Job } from '../store/job.js';
import type { FileStat } from '../watch/settle.js';
import { errnoCode } from '../files/errno.js';
import { sameVersion } from './version.js';

export type AfterUpload = { action: 'keep' } | DueAfterUpload;
/** What is stored with an after-upload follow-up: only a move or a delete is ever due. */
export type DueAfterUpload = { action: 'delete' } | { action: 'move'; folder: string; moveTo: string };

export type AfterUploadOutcome = { kind: 'moved'; to: string } | { kind: 'deleted' } | { kind: 'gone' };

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
 * replaced it meanwhile must not be lost. Safe to run again after a failure
 * or a crash: it leaves no second copy behind. `run` carries the first look
 * at the file (the folder's gate: a hung share fails it in time).
 */
export async function applyAfterUpload(path: string, plan: DueAfterUpload, uploaded: FileStat, run: FileOperations = directly): Promise<AfterUploadOutcome> {
  let before;
  try {
    before = await run(() => lstat(path));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { kind: 'gone' };
    throw error;
  }
  if (!sameVersion(before, uploaded)) throw new NotTheUploadedVersionError(path);
  if (plan.action === 'delete') {
    await unlink(path);
    return { kind: 'deleted' };
  }
  return { kind: 'moved', to: await moveWithoutOverwrite(path, join(plan.moveTo, relative(plan.folder, path)), before) };
}

/**
 * Places the file under `target` (or a free variant of that name), then
 * removes the original, only while it is still the same file. A link to
 * the very file, left by a run that stopped before removing the original,
 * is taken as it is; if the original cannot be removed, the placed name is,
 * so that a retry never leaves `mix (2).wav`, `mix (3).wav`… behind.
 */
async function moveWithoutOverwrite(path: string, target: string, original: Stats): Promise<string> {
  const placed = await placeAtFreeName(path, target, async (candidate) => sameInode(await lstat(candidate), original));
  try {
    // A slow copy across file systems gives a re-export time to start; then the copy may hold its bytes, not ours.
    const now = await lstat(path);
    if (now.ino !== original.ino || !sameVersion(now, original)) throw new NotTheUploadedVersionError(path);
    await unlink(path);
  } catch (error) {
    await rm(placed, { force: true });
    throw error;
  }
  return placed;
}

const sameInode = (a: Stats, b: Stats) => a.ino === b.ino && a.dev === b.dev;
