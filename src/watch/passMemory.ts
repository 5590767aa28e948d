import type { FileStat } from './settle.js';

/**
 * What the last complete poll pass saw of each file (size and mtime), so the
 * next pass asks the DB only about files that changed since. That lookup,
 * not the walk or the stat, is most of a pass's cost on a large tree. Memory
 * is the pass's own stat result per file (about 10 MB for 100k files, twice
 * that during a pass); an inotify watcher costs far more per file.
 */
export class PassMemory {
  #previous = new Map<string, FileStat>();
  #current = new Map<string, FileStat>();

  /** Notes what this pass sees of `path`; true when the last complete pass saw the same version. */
  unchanged(path: string, fileStat: FileStat): boolean {
    this.#current.set(path, fileStat);
    const seen = this.#previous.get(path);
    return seen !== undefined && seen.size === fileStat.size && seen.mtimeMs === fileStat.mtimeMs;
  }

  /** The pass went through the whole tree: what it saw is what the next one compares with. */
  complete(): void {
    this.#previous = this.#current;
    this.#current = new Map();
  }

  /** A pass cut short, or a new root: forget what was seen, so the next pass compares with the DB. */
  reset(): void {
    this.#previous = new Map();
    this.#current = new Map();
  }
}
