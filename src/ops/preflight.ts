import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { FolderConfig } from '../config/index.js';
import { watchMode } from '../watch/watchMode.js';
import { describeFileSystem, fileSystemOf, type FileSystem } from '../watch/fileSystem.js';

export type Verdict = 'PASS' | 'WARN' | 'FAIL';

export interface CheckLine {
  verdict: Verdict;
  check: string;
  detail: string;
}

/** Below this, a master or two may not fit. */
const LOW_FREE_BYTES = 1024 ** 3;

/** The database must be on a local disk: SQLite's WAL relies on shared memory a network file system does not give. */
export function databaseFileSystem(database: string, lookUp: (path: string) => FileSystem | undefined = fileSystemOf): CheckLine {
  const fs = lookUp(database);
  const check = 'state database file system';
  if (!fs) return { verdict: 'WARN', check, detail: `cannot tell the file system of ${database}` };
  if (fs.network) {
    return { verdict: 'FAIL', check, detail: `${database} is on ${describeFileSystem(fs)}, a network file system where SQLite's WAL is unsafe; put state.database on a local disk` };
  }
  return { verdict: 'PASS', check, detail: `${describeFileSystem(fs)}, local` };
}

/**
 * Network and FUSE mounts raise no events for changes made elsewhere: those
 * folders need polling, which `polling: auto` gives them, as the daemon
 * decides it (watchMode).
 */
export function folderFileSystem(folder: FolderConfig, lookUp: (path: string) => FileSystem | undefined = fileSystemOf): CheckLine {
  const check = `file system of ${folder.path}`;
  const fs = lookUp(folder.path);
  if (!fs) return { verdict: 'WARN', check, detail: 'cannot tell (the folder is missing?)' };
  const mode = watchMode(folder.polling, fs);
  if (mode.missesRemoteChanges) {
    return {
      verdict: 'WARN',
      check,
      detail: `${describeFileSystem(fs)} is a network or FUSE file system and this folder has polling: never: files written from other machines raise no events here; set polling: auto (or always) for ${folder.path}`,
    };
  }
  const how = mode.poll ? `polled every ${folder.pollIntervalSeconds} s` : 'watched with inotify';
  return { verdict: 'PASS', check, detail: `${how}: ${mode.reason}` };
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
