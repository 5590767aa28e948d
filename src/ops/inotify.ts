import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, FolderConfig } from '../config/index.js';
import { folderFilter } from '../pipeline/folder.js';
import type { FileOperations } from '../files/folderGate.js';
import { walkFiles } from '../watch/walk.js';
import { watchMode } from '../watch/watchMode.js';
import { fileSystemOf, type FileSystem } from '../watch/fileSystem.js';
import type { CheckLine } from './preflight.js';

/** Counting stops here: past it the answer (raise the limit) is the same. */
const MAX_COUNTED = 2_000_000;

export interface InotifyOptions {
  /** /proc/sys/fs/inotify, or a stand-in holding max_user_watches and max_user_instances. */
  procDir?: string;
  fileSystemOf?: (path: string) => FileSystem | undefined;
  /** How a folder's listings run: its gate in `check`, so that a share hung below a folder cannot hang the count. */
  runFor?: (folder: FolderConfig) => FileOperations;
}

/** Folders the daemon would watch with inotify: those it does not poll, decided as the daemon decides. */
function inotifyFolders(config: Config, lookUp: (path: string) => FileSystem | undefined): FolderConfig[] {
  return config.folders.filter((folder) => !watchMode(folder.polling, lookUp(folder.path)).poll);
}

function readLimit(procDir: string, name: string): number {
  return Number(readFileSync(join(procDir, name), 'utf8').trim());
}

function sysctlFix(key: string, value: number): string {
  return `raise it: echo fs.inotify.${key}=${value} | sudo tee -a /etc/sysctl.d/90-cryomix-watch.conf && sudo sysctl --system`;
}

/**
 * The watcher takes one inotify watch per directory it enters (ignored ones
 * and symlinks excepted): a directory's watch reports its files by name.
 * Past the per-user limit, new folders go unwatched.
 */
export async function inotifyWatches(config: Config, options: InotifyOptions = {}): Promise<CheckLine> {
  const check = 'inotify watches';
  const limit = readLimit(options.procDir ?? '/proc/sys/fs/inotify', 'max_user_watches');
  let needed = 0;
  for (const folder of inotifyFolders(config, options.fileSystemOf ?? fileSystemOf)) {
    needed += await countDirectories(folder, MAX_COUNTED - needed, options.runFor?.(folder));
  }
  const what = `${needed} needed (one per watched folder and sub-folder; polled folders need none)`;
  const fix = sysctlFix('max_user_watches', Math.max(needed * 2, 524_288));
  if (needed > limit) return { verdict: 'FAIL', check, detail: `${what}, the limit is ${limit}; ${fix}` };
  if (needed > limit * 0.8) return { verdict: 'WARN', check, detail: `${what}, close to the limit of ${limit}; ${fix}` };
  return { verdict: 'PASS', check, detail: `${what}, the limit is ${limit}` };
}

async function countDirectories(folder: FolderConfig, budget: number, run: FileOperations | undefined): Promise<number> {
  const filter = folderFilter(folder);
  let directories = 0;
  try {
    const walk = walkFiles(folder.path, {
      recursive: folder.recursive,
      ...(run === undefined ? {} : { run }),
      isIgnored: (path, name) => filter.isIgnoredEntry(path, name),
      onDirectory: () => {
        directories++;
      },
      // Counted on the way in, but the daemon could not watch it either; the folder's own line says what is wrong.
      onUnreadableDirectory: () => {
        directories--;
      },
    });
    for await (const _files of walk) {
      if (directories >= budget) break;
    }
  } catch {
    // The root itself is unreadable or missing, or the folder stopped answering: its folder line FAILs with the fix
    // (or the count is short by what a hung share below it holds, which the daemon could not watch either).
  }
  return directories;
}

/**
 * Node (libuv) opens one inotify instance per event loop and adds every
 * watch to it, so the daemon needs one instance however many folders it
 * watches (seen in /proc/<pid>/fd: one anon_inode:inotify). The limit is per
 * user, shared with the user's other programs; it is the instances already
 * open that can leave none for us.
 */
export function inotifyInstances(config: Config, options: InotifyOptions & { procRoot?: string; uid?: number } = {}): CheckLine {
  const check = 'inotify instances';
  const limit = readLimit(options.procDir ?? '/proc/sys/fs/inotify', 'max_user_instances');
  const needed = inotifyFolders(config, options.fileSystemOf ?? fileSystemOf).length > 0 ? 1 : 0;
  if (needed === 0) return { verdict: 'PASS', check, detail: 'none needed: every folder is polled' };
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const inUse = instancesInUse(options.procRoot ?? '/proc', uid);
  const what = `1 needed (one per process, whatever the number of folders); ${inUse} of ${limit} already open by uid ${uid}`;
  const fix = sysctlFix('max_user_instances', Math.max(limit * 2, 512));
  if (inUse + needed > limit) return { verdict: 'FAIL', check, detail: `${what}: none left; ${fix}` };
  if (inUse + needed > limit * 0.8) return { verdict: 'WARN', check, detail: `${what}, close to the limit; ${fix}` };
  return { verdict: 'PASS', check, detail: what };
}

/** inotify instances open by `uid`'s processes, as far as /proc lets us see (our own user's always). */
export function instancesInUse(procRoot: string, uid: number): number {
  let count = 0;
  for (const pid of readdirSync(procRoot).filter((name) => /^\d+$/.test(name))) {
    const fdDir = join(procRoot, pid, 'fd');
    let fds: string[];
    try {
      if (statSync(join(procRoot, pid)).uid !== uid) continue;
      fds = readdirSync(fdDir);
    } catch {
      // Exited since the listing, or not ours to read: it cannot be counted.
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(join(fdDir, fd)) === 'anon_inode:inotify') count++;
      } catch {
        // Closed since the listing.
      }
    }
  }
  return count;
}
