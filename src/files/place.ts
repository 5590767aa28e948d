import { constants } from 'node:fs';
import { copyFile, link, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { ensureSharedDirectory, giveGroup } from './directory.js';
import { errnoCode } from './errno.js';

/**
 * Makes `source` appear at `target`, or at `name (2).ext`, `name (3).ext`…
 * when that name is taken, and returns the name used. Never replaces a
 * file: `link` and COPYFILE_EXCL fail on an existing name, so a file that
 * appears there meanwhile is safe too. A name `isAlreadyThere` judges to
 * hold the source already (placed before a crash) is taken as it is.
 * `source` stays; the caller removes it.
 */
export async function placeAtFreeName(source: string, target: string, isAlreadyThere?: (candidate: string) => Promise<boolean>): Promise<string> {
  await ensureSharedDirectory(dirname(target));
  const ext = extname(target);
  const stem = basename(target, ext);
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? target : join(dirname(target), `${stem} (${n})${ext}`);
    try {
      await placeAt(source, candidate);
      return candidate;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
      if (await isAlreadyThere?.(candidate)) return candidate;
    }
  }
}

async function placeAt(source: string, candidate: string): Promise<void> {
  try {
    await link(source, candidate);
  } catch (error) {
    // Another file system, one without hard links, or another user's file (fs.protected_hardlinks): copy, still refusing to overwrite.
    if (errnoCode(error) !== 'EXDEV' && errnoCode(error) !== 'EPERM') throw error;
    // The copy is ours, with the original's permission bits (copyFile keeps them); its group too, where we may give it.
    await copyFile(source, candidate, constants.COPYFILE_EXCL);
    await giveGroup(candidate, (await stat(source)).gid);
  }
}
