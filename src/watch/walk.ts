import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { directly, FolderNotAnsweringError, type FileOperations } from '../files/folderGate.js';

export interface WalkOptions {
  recursive: boolean;
  /** Each listing goes through it: the folder's gate, where there is one. A folder that stops answering ends the walk (thrown). */
  run?: FileOperations;
  /** Asked only about the entries of directories the walk let through, so a filter may judge `name` alone. */
  isIgnored(path: string, name: string): boolean;
  /**
   * A directory below the root could not be read (EACCES on `lost+found`,
   * say). The walk goes on; the caller must not conclude that files under it
   * are gone. An unreadable root is thrown instead.
   */
  onUnreadableDirectory(dir: string, error: unknown): void;
  /**
   * Each directory the walk is about to read, the root first: an inotify
   * watcher adds it here, before the listing, so that any file is either
   * listed or reported by the watch.
   */
  onDirectory?(dir: string): void;
}

/**
 * Yields the regular files below `root` that `isIgnored` lets through, one
 * directory's worth at a time, with that directory (a walk of 100k files is
 * then a few thousand steps, not 100k), without descending into ignored
 * directories (a NAS `#recycle` can hold more files than the folder itself).
 * Symlinks are not followed: a link pointing outside the watched folder must
 * not make us upload someone else's files. The next directory is already
 * being listed while the caller looks at the files of this one.
 */
export async function* walkFiles(root: string, options: WalkOptions): AsyncGenerator<{ directory: string; files: string[] }> {
  const list = (dir: string) => {
    options.onDirectory?.(dir);
    // One call per directory, not one promise per entry as with opendir: half the CPU of a
    // 100k-file walk, which a polled folder pays every pass. A directory's names fit in memory.
    return (options.run ?? directly)(() => readdir(dir, { withFileTypes: true })).then(
      (entries) => ({ dir, entries }),
      (error: unknown) => ({ dir, error }),
    );
  };
  const pending: string[] = [];
  let next: ReturnType<typeof list> | undefined = list(root);
  while (next !== undefined) {
    const listed = await next;
    if ('error' in listed) {
      if (listed.dir === root || listed.error instanceof FolderNotAnsweringError) throw listed.error;
      options.onUnreadableDirectory(listed.dir, listed.error);
    }
    const files: string[] = [];
    for (const entry of 'entries' in listed ? listed.entries : []) {
      const path = join(listed.dir, entry.name);
      if (options.isIgnored(path, entry.name)) continue;
      if (entry.isDirectory()) {
        if (options.recursive) pending.push(path);
      } else if (entry.isFile()) {
        files.push(path);
      }
    }
    const following = pending.pop();
    next = following === undefined ? undefined : list(following);
    if (files.length > 0) yield { directory: listed.dir, files };
  }
}
