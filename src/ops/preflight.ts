import { readFileSync, statfsSync } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { fileSystemOf } from './fileSystem.js';

export type Verdict = 'PASS' | 'WARN' | 'FAIL';

export interface CheckLine {
  verdict: Verdict;
  check: string;
  detail: string;
}

/** Below this, a master or two may not fit. */
const LOW_FREE_BYTES = 1024 ** 3;
/** Counting stops here: past it the answer (raise the limit) is the same. */
const MAX_COUNTED = 2_000_000;

/** The database must be on a local disk: SQLite's WAL relies on shared memory a network file system does not give. */
export function databaseFileSystem(database: string): CheckLine {
  const fs = fileSystemOf(database);
  const check = 'state database file system';
  if (!fs) return { verdict: 'WARN', check, detail: `cannot tell the file system of ${database}` };
  if (fs.network) {
    return { verdict: 'FAIL', check, detail: `${database} is on ${fs.type} (${fs.mountPoint}), a network file system where SQLite's WAL is unsafe; put state.database on a local disk` };
  }
  return { verdict: 'PASS', check, detail: `${fs.type}, local` };
}

/** Network and FUSE mounts raise no events for changes made elsewhere: those folders need polling. */
export function folderFileSystem(folder: Config['folders'][number]): CheckLine {
  const check = `file system of ${folder.path}`;
  const fs = fileSystemOf(folder.path);
  if (!fs) return { verdict: 'WARN', check, detail: 'cannot tell (the folder is missing?)' };
  if (fs.network && folder.polling !== 'always') {
    return {
      verdict: 'WARN',
      check,
      detail: `${fs.type} (${fs.mountPoint}) is a network file system: files written from other machines raise no events here; set polling: always for this folder`,
    };
  }
  return { verdict: 'PASS', check, detail: `${fs.type}${fs.network ? ', network, polled' : ', local'}` };
}

/**
 * Every directory and file of a watched (not polled) folder takes an
 * inotify watch; past the per-user limit, new files go unnoticed.
 */
export async function inotifyWatches(config: Config, procDir = '/proc/sys/fs/inotify'): Promise<CheckLine> {
  const check = 'inotify watches';
  const limit = Number(readFileSync(join(procDir, 'max_user_watches'), 'utf8').trim());
  let needed = 0;
  for (const folder of config.folders) if (folder.polling !== 'always') needed += await countEntries(folder.path, folder.recursive);
  const fix = `raise it: echo fs.inotify.max_user_watches=${Math.max(needed * 2, 524_288)} | sudo tee /etc/sysctl.d/90-cryomix-watch.conf && sudo sysctl --system`;
  if (needed > limit) return { verdict: 'FAIL', check, detail: `${needed} files and folders to watch, the limit is ${limit}; ${fix}` };
  if (needed > limit * 0.8) return { verdict: 'WARN', check, detail: `${needed} of ${limit} watches needed; ${fix}` };
  return { verdict: 'PASS', check, detail: `${needed} of ${limit} watches needed` };
}

async function countEntries(root: string, recursive: boolean): Promise<number> {
  let count = 1;
  const pending = [root];
  while (pending.length > 0 && count < MAX_COUNTED) {
    const dir = pending.pop()!;
    const entries = await opendir(dir).catch(() => undefined);
    if (!entries) continue;
    for await (const entry of entries) {
      count++;
      if (recursive && entry.isDirectory()) pending.push(join(dir, entry.name));
    }
  }
  return count;
}

/** Masters are downloaded promptly (the vendor deletes them after 7 days): there must be room. */
export function freeSpace(directory: string): CheckLine {
  const check = `free space for masters in ${directory}`;
  let existing = directory;
  for (;;) {
    try {
      const stats = statfsSync(existing, { bigint: true });
      const free = Number(stats.bavail * stats.bsize);
      const gib = (free / 1024 ** 3).toFixed(1);
      return free < LOW_FREE_BYTES
        ? { verdict: 'WARN', check, detail: `only ${gib} GiB free; masters may not fit` }
        : { verdict: 'PASS', check, detail: `${gib} GiB free` };
    } catch {
      // Not created yet: the file system it will be on decides.
      const parent = join(existing, '..');
      if (parent === existing) return { verdict: 'WARN', check, detail: 'cannot tell' };
      existing = parent;
    }
  }
}
