import { basename, join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface FolderWatchOptions {
  root: string;
  recursive: boolean;
  isIgnored(path: string): boolean;
  /** Any add, change or unlink of a non-ignored file. The settle rule decides what it means. */
  onPath(path: string): void;
  onError(error: unknown): void;
}

export interface FolderWatch {
  /** Resolves once the watcher has its initial view; events before that are not lost, only early. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Watches one configured folder with inotify (through chokidar, which takes
 * one inotify watch per directory and per file it sees). Polled folders do
 * not come here: see poller.ts. Events are hints, not facts: every one of
 * them only asks the settler to look at the path again, so a missed, doubled
 * or reordered event can delay an upload but never cause a wrong one.
 */
export function watchFolder(options: FolderWatchOptions): FolderWatch {
  const watcher: FSWatcher = watch(options.root, {
    ignored: (path: string) => options.isIgnored(path),
    ignoreInitial: true,
    followSymlinks: false,
    ...(options.recursive ? {} : { depth: 0 }),
  });
  const forward = (path: string) => options.onPath(path);
  watcher.on('add', forward).on('change', forward).on('unlink', forward).on('error', options.onError);
  // chokidar drops some files it cannot handle itself: names that are not valid UTF-8, files it may not read
  // (it watches each file, which needs read access). The raw inotify event still names them; the settle rule decides.
  watcher.on('raw', (_event, name, details) => {
    const watchedPath = (details as { watchedPath?: string } | undefined)?.watchedPath;
    if (typeof name !== 'string' || !name || !watchedPath) return;
    const path = basename(watchedPath) === name ? watchedPath : join(watchedPath, name);
    if (!options.isIgnored(path)) forward(path);
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { ready, close: () => watcher.close() };
}
