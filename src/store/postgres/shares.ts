import { UnsharedPathError } from './errors.js';
import type { SharedFolder } from './options.js';

/** Where a file is, as every machine names it: its folder's share and its path below that folder ('' for the folder itself). */
export interface SharedPath {
  share: string;
  relative: string;
}

/** A folder path without a trailing slash, except the root itself. */
const trimmed = (path: string) => (path.length > 1 ? path.replace(/\/+$/, '') : path);

/** `path` below `folder` ('' when it is the folder), or undefined when it is not inside. */
function below(folder: string, path: string): string | undefined {
  if (folder === '/') return path.startsWith('/') ? path.slice(1) : undefined;
  if (path === folder) return '';
  return path.startsWith(`${folder}/`) ? path.slice(folder.length + 1) : undefined;
}

/**
 * Translates between this machine's absolute paths and the rows' keys
 * (share, relative path), so that `/mnt/nas/exports/a.wav` here and
 * `/srv/exports/a.wav` on another machine are one row when both folders
 * are the share `exports`.
 */
export class Shares {
  /** Longest folder first: a path inside nested folders belongs to the innermost. */
  private readonly folders: readonly SharedFolder[];
  private readonly folderOfShare: ReadonlyMap<string, string>;

  constructor(folders: readonly SharedFolder[]) {
    this.folders = folders.map(({ path, share }) => ({ path: trimmed(path), share })).sort((a, b) => b.path.length - a.path.length);
    this.folderOfShare = new Map(this.folders.map(({ path, share }) => [share, path]));
  }

  /** The shares this machine has folders for: the rows whose files it can reach. */
  get names(): string[] {
    return [...this.folderOfShare.keys()];
  }

  /** The key of a file, found by the innermost configured folder holding it. */
  ofPath(path: string): SharedPath {
    for (const folder of this.folders) {
      const relative = below(folder.path, path);
      if (relative !== undefined) return { share: folder.share, relative };
    }
    throw new UnsharedPathError(path, 'path');
  }

  /** The key of a file of a known folder. */
  inFolder(folder: string, path: string): SharedPath {
    const share = this.shareOf(folder);
    const relative = below(trimmed(folder), path);
    if (relative === undefined) throw new UnsharedPathError(path, 'path');
    return { share, relative };
  }

  shareOf(folder: string): string {
    const wanted = trimmed(folder);
    const found = this.folders.find(({ path }) => path === wanted);
    if (found === undefined) throw new UnsharedPathError(folder, 'folder');
    return found.share;
  }

  /**
   * This machine's folder and path for a row. A share not mounted here (it is
   * another machine's) reads as `share:` and `share:/relative`, which no local
   * path looks like; such rows only reach listings, never this machine's work.
   */
  local({ share, relative }: SharedPath): { folder: string; path: string } {
    const folder = this.folderOfShare.get(share);
    if (folder === undefined) return { folder: `${share}:`, path: `${share}:/${relative}` };
    if (relative === '') return { folder, path: folder };
    return { folder, path: folder === '/' ? `/${relative}` : `${folder}/${relative}` };
  }
}
