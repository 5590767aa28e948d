import { opendir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Yields every regular file below `root` that `isIgnored` lets through,
 * without descending into ignored directories (a NAS `#recycle` can hold more
 * files than the folder itself). Symlinks are not followed: a link pointing
 * outside the watched folder must not make us upload someone else's files.
 */
export async function* walkFiles(root: string, options: { recursive: boolean; isIgnored(path: string): boolean }): AsyncGenerator<string> {
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    for await (const entry of await opendir(dir)) {
      const path = join(dir, entry.name);
      if (options.isIgnored(path)) continue;
      if (entry.isDirectory()) {
        if (options.recursive) pending.push(path);
      } else if (entry.isFile()) {
        yield path;
      }
    }
  }
}
