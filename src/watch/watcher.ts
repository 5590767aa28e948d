import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface FolderWatchOptions {
  root: string;
  recursive: boolean;
  isIgnored(path: string): boolean;
  /** A file was created, written, renamed or deleted. The settle rule decides what it means. */
  onPath(path: string): void;
  /** A directory appeared (created, or moved in with its files): its files raised no event of their own. */
  onDirectoryAdded(dir: string): void;
  /** A directory went away with whatever it held. */
  onDirectoryRemoved(dir: string): void;
  onError(error: unknown): void;
}

export interface FolderWatch {
  /** Resolves once the watcher has its initial view; events before that are not lost, only early. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Watches one configured folder with inotify through chokidar, directories
 * only: a directory's inotify watch already reports every file created,
 * written, moved or deleted in it, by name. Left to itself chokidar also
 * watches each file, which for a 100,000-file share means 100,000 more
 * watches and about 600 MB. Polled folders do not come here: see poller.ts.
 * Events are hints, not facts: every one only asks the settler to look at
 * the path again, so a missed, doubled or reordered event can delay an
 * upload but never cause a wrong one.
 */
export function watchFolder(options: FolderWatchOptions): FolderWatch {
  const watcher: FSWatcher = watch(options.root, {
    // chokidar passes stats once it has them; a path it asks about without them is let through to be stat'ed.
    ignored: (path: string, stats?: Stats) => options.isIgnored(path) || stats?.isFile() === true || stats?.isSymbolicLink() === true,
    ignoreInitial: true,
    followSymlinks: false,
    ...(options.recursive ? {} : { depth: 0 }),
  });
  // chokidar reports sub-folders even at depth 0; a folder that is not recursive has no business with them.
  if (options.recursive) {
    watcher.on('addDir', (dir) => options.onDirectoryAdded(dir));
    watcher.on('unlinkDir', (dir) => options.onDirectoryRemoved(dir));
  }
  watcher.on('error', options.onError);
  // The directory's own inotify events, by name: also files chokidar would skip (names that are not UTF-8, unreadable files).
  watcher.on('raw', (_event, name, details) => {
    const watchedPath = (details as { watchedPath?: string } | undefined)?.watchedPath;
    if (typeof name !== 'string' || !name || !watchedPath) return;
    const path = join(watchedPath, name);
    if (!options.isIgnored(path)) options.onPath(path);
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { ready, close: () => watcher.close() };
}
