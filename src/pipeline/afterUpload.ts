import { constants } from 'node:fs';
import { copyFile, link, mkdir, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import type { FolderConfig } from '../config/index.js';
import type { Job } from '../store/job.js';
import { errnoCode } from './version.js';

export type AfterUpload = { action: 'keep' } | { action: 'delete' } | { action: 'move'; folder: string; moveTo: string };

/** The folder's `afterUpload` setting for a job; files outside every folder (`upload FILE`) are kept. */
export function afterUploadPlan(folders: readonly FolderConfig[], job: Job): AfterUpload {
  const folder = folders.find((f) => f.path === job.folder);
  if (!folder || folder.afterUpload === 'keep') return { action: 'keep' };
  if (folder.afterUpload === 'delete') return { action: 'delete' };
  return { action: 'move', folder: folder.path, moveTo: folder.moveTo! };
}

/**
 * What happens to the studio's file once its bytes are safely stored. Returns
 * where the file now is (for the log), or null when it was deleted.
 */
export async function applyAfterUpload(path: string, plan: AfterUpload): Promise<string | null> {
  switch (plan.action) {
    case 'keep':
      return path;
    case 'delete':
      await unlink(path).catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') throw error;
      });
      return null;
    case 'move':
      return moveWithoutOverwrite(path, join(plan.moveTo, relative(plan.folder, path)));
  }
}

/**
 * Moves `path` to `target`, or to `name (2).ext`, `name (3).ext`… when that
 * name is taken. `link` fails atomically on an existing name, so a file that
 * appears at the target meanwhile is never overwritten.
 */
async function moveWithoutOverwrite(path: string, target: string): Promise<string> {
  await mkdir(dirname(target), { recursive: true });
  const ext = extname(target);
  const stem = basename(target, ext);
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? target : join(dirname(target), `${stem} (${n})${ext}`);
    try {
      await placeAt(path, candidate);
      await unlink(path);
      return candidate;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
}

async function placeAt(path: string, candidate: string): Promise<void> {
  try {
    await link(path, candidate);
  } catch (error) {
    // Another file system (or one without hard links): copy, still refusing to overwrite.
    if (errnoCode(error) !== 'EXDEV' && errnoCode(error) !== 'EPERM') throw error;
    await copyFile(path, candidate, constants.COPYFILE_EXCL);
  }
}
