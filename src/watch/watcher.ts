import { watch, type FSWatcher, type Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import { CryomixWatchError } from '../errors.js';
import { isGone, nullIfGone } from '../files/errno.js';

export interface FolderWatchOptions {
  /** Whether directories appearing below the watched ones are reported; a folder that is not recursive ignores them. */
  recursive: boolean;
  isIgnored(path: string): boolean;
  /** A file was created, written, renamed or deleted. The settle rule decides what it means. */
  onPath(path: string): void;
  /** A directory appeared (created, or moved in with its files): its files raised no event of their own. The caller walks it, adding each directory before reading it. */
  onDirectoryAdded(dir: string): void;
  /** A directory went away with whatever it held; its watches (and those below it) are already gone. */
  onDirectoryRemoved(dir: string): void;
  /**
   * A watched directory reported an event about itself: it was removed or
   * moved away (then its watch is dead, even if a directory is at its path
   * again), or its own permissions or times changed, which inotify reports
   * the same way. A sub-directory's parent reports a removal too
   * (onDirectoryRemoved); for the root this is the only word, and ext4 can
   * give a root made again the same inode number.
   */
  onOwnEvent(dir: string): void;
  onError(error: unknown): void;
}

export interface FolderWatch {
  /**
   * Watches `dir` itself, not what is below it. Call it before listing the
   * directory: then a file is either in the listing or raises an event.
   * Idempotent; a directory gone meanwhile is skipped (its parent reports it).
   */
  add(dir: string): void;
  /**
   * Drops the watches at and below `dir`, which a mount or unmount there has
   * made deaf: they watch a covered directory, or one whose file system is
   * gone. The caller walks `dir` again, adding each directory anew.
   */
  forget(dir: string): void;
  close(): Promise<void>;
}

/**
 * One inotify watch per directory (Node's fs.watch), none per file: a
 * directory's watch already names every file created, written, moved or
 * deleted in it. The directories come from the caller's own walk (the
 * startup reconcile), so a 100,000-file share is listed once, and its files
 * are never stat'ed for the watcher's sake. chokidar, which we used before,
 * lstats every entry of a directory when it starts and again after every
 * change in it; on a large share that doubled startup and held about 200 MB
 * more. Polled folders do not come here: see poller.ts.
 *
 * Events are hints, not facts: every one only asks the settle rule to look at
 * the path again, so a missed, doubled or reordered event can delay an
 * upload but never cause a wrong one.
 */
export function watchFolder(options: FolderWatchOptions): FolderWatch {
  const watches = new Map<string, FSWatcher>();
  /** Directories whose watch failed: each rescan tries again, and the log says so once, not every ten minutes. */
  const unwatchable = new Set<string>();
  let closed = false;

  /** Children are only ever added after their parent, so a path not watched has nothing watched below it either. */
  const unwatchFrom = (dir: string): void => {
    if (!watches.has(dir)) return;
    for (const [watched, watcher] of watches) {
      if (watched === dir || watched.startsWith(dir + sep)) {
        watcher.close();
        watches.delete(watched);
      }
    }
  };

  /**
   * A name was created, removed or renamed in a watched directory. Whatever
   * was watched at that path is gone, even when a directory is there again:
   * removed and made anew, or another renamed to it, between two looks (the
   * inode number can be the same). A directory there now is walked afresh.
   */
  const classify = async (path: string): Promise<void> => {
    const found = await entryAt(path);
    if (closed) return;
    if (watches.has(path)) {
      unwatchFrom(path);
      options.onDirectoryRemoved(path);
    }
    if (found?.isDirectory()) options.onDirectoryAdded(path);
  };

  const ownEvent = async (dir: string, path: string): Promise<void> => {
    if ((await entryAt(path)) === null && !closed) options.onOwnEvent(dir);
  };

  const add = (dir: string): void => {
    if (closed || watches.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, (event, name) => {
        // No name: something happened in the directory that inotify could not say; look at all of it again.
        if (!name) return options.onDirectoryAdded(dir);
        const path = join(dir, name);
        // An event about the watched directory itself arrives under its own name, as if a child's; then nothing is at that path.
        if (name === basename(dir)) ownEvent(dir, path).catch(options.onError);
        if (options.isIgnored(path)) return;
        options.onPath(path);
        // Creations, deletions and moves are 'rename'; a directory's own content changes never reach its parent as 'change'.
        if (options.recursive && event === 'rename') classify(path).catch(options.onError);
      });
    } catch (error) {
      // Gone between its parent's listing and now: the parent's event reports it.
      if (isGone(error)) return;
      if (!unwatchable.has(dir)) options.onError(new WatchError(dir, error));
      unwatchable.add(dir);
      return;
    }
    unwatchable.delete(dir);
    watcher.on('error', (error) => options.onError(new WatchError(dir, error)));
    watches.set(dir, watcher);
  };

  return {
    add,
    forget: unwatchFrom,
    close: async () => {
      closed = true;
      for (const watcher of watches.values()) watcher.close();
      watches.clear();
    },
  };
}

/** What is at `path` now, or null when nothing is. */
function entryAt(path: string): Promise<Stats | null> {
  return lstat(path).catch(nullIfGone);
}

/** A directory that cannot be watched: files already in it are still found by the walk, later ones are not. */
export class WatchError extends CryomixWatchError {
  readonly directory: string;

  constructor(directory: string, cause: unknown) {
    // ENOSPC from inotify means the watch limit, not a full disk.
    const why =
      (cause as NodeJS.ErrnoException).code === 'ENOSPC'
        ? 'the inotify watch limit is reached; raise fs.inotify.max_user_watches (`cryomix-watch check` says by how much)'
        : `${(cause as Error).message}; check its permissions`;
    super('WATCH_FAILED', `cannot watch ${directory}: ${why}. Until it can be, files written there are found by the folder's rescan (rescanIntervalSeconds), which also tries to watch it again`, { cause });
    this.directory = directory;
  }
}
