import { isAbsolute, relative, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import { kindFromExtension } from './sniff.js';

export interface PathFilter {
  /**
   * For the watcher's events and for walks: true for junk files
   * AND junk directories, so that they are never descended into. Also true
   * for anything outside the root. Never true for the root itself.
   */
  isIgnored(absolutePath: string): boolean;
  /**
   * The same answer for `name`, found at `path` (normalized, absolute) in a
   * directory that is itself not ignored: a walk asks this for every entry of
   * a large share, so only the last name and the user's path globs are
   * looked at, and no path is resolved.
   */
  isIgnoredEntry(path: string, name: string): boolean;
  /**
   * Not ignored and named .wav/.wave/.mp3 (any case). Decided from the name
   * only: the caller still checks that it is a regular file.
   */
  isCandidate(absolutePath: string): boolean;
}

/** Lower-cased names that mark NAS, OS and DAW housekeeping folders and files wherever they appear. */
const JUNK_NAMES = new Set(['thumbs.db', '#recycle', '@eadir']);
/** Partial downloads, temp files, and DAW peak/analysis caches that sit next to real audio. */
const JUNK_SUFFIXES = ['.tmp', '.part', '.crdownload', '.reapeaks', '.asd', '.pkf'];

/**
 * Dot-names cover dotfiles, dot-directories, AppleDouble `._*`, `.DS_Store`
 * and `.Trash-*`; `~$*` are Office/DAW lock files.
 */
function isJunkName(name: string): boolean {
  if (name.startsWith('.') || name.startsWith('~$')) return true;
  const lower = name.toLowerCase();
  return JUNK_NAMES.has(lower) || JUNK_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}

/**
 * Which paths under `root` are worth watching. Built-in junk is matched on
 * each path segment below the root, never on the root or its parents, so a
 * root such as `/home/x/.local/share/exports` still works.
 *
 * `userIgnore` globs are relative to the root and case-insensitive, like the
 * extensions they usually name. They follow .gitignore habits: a pattern
 * without a slash (`*.bak.wav`, `scratch`) matches a name at any depth, and a
 * pattern that matches a directory excludes everything below it.
 *
 * `extraIgnoredDirs` (absolute) are excluded with all their contents: the
 * `moveTo` folder or an output folder inside the watched one must never be
 * picked up again.
 */
export function createPathFilter(root: string, userIgnore: string[], extraIgnoredDirs: string[] = []): PathFilter {
  const base = resolve(root);
  const excludedDirs = extraIgnoredDirs.map((dir) => resolve(dir));
  const options = { dot: true, nocase: true };
  const namePatterns = userIgnore.filter((pattern) => !pattern.includes('/'));
  const pathPatterns = userIgnore.filter((pattern) => pattern.includes('/'));
  // picomatch refuses an empty pattern list, and with no patterns nothing matches anyway.
  const matchesName = namePatterns.length > 0 ? picomatch(namePatterns, options) : () => false;
  const matchesPath = pathPatterns.length > 0 ? picomatch(pathPatterns, options) : () => false;

  function isIgnored(absolutePath: string): boolean {
    const target = resolve(absolutePath);
    const rel = relative(base, target);
    if (rel === '') return false;
    if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) return true;
    if (excludedDirs.some((dir) => target === dir || target.startsWith(dir + sep))) return true;
    const segments = rel.split(sep);
    // Testing every ancestor as well makes the answer right even for a caller
    // that never asked about the directory (a polling scan, a single event).
    for (const [i, name] of segments.entries()) {
      if (isJunkName(name) || matchesName(name)) return true;
      if (matchesPath(segments.slice(0, i + 1).join('/'))) return true;
    }
    return false;
  }

  function isIgnoredEntry(path: string, name: string): boolean {
    if (isJunkName(name) || matchesName(name) || excludedDirs.includes(path)) return true;
    return pathPatterns.length > 0 && matchesPath(relative(base, path));
  }

  return {
    isIgnored,
    isIgnoredEntry,
    isCandidate: (absolutePath) => !isIgnored(absolutePath) && kindFromExtension(absolutePath) !== null,
  };
}
