import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { Config, FolderConfig } from './schema.js';

/**
 * Relative paths are relative to the config file, not to the daemon's working
 * directory, which under systemd is `/` and in a shell is wherever the user
 * happens to be.
 */
export function resolvePaths(config: Config, baseDir: string): Config {
  const at = (relative: string) => path.resolve(baseDir, relative);
  const atIfSet = (relative: string | undefined) => (relative === undefined ? undefined : at(relative));
  const resolved: Config = {
    ...config,
    api: { ...config.api, keyFile: atIfSet(config.api.keyFile) },
    state: { database: at(config.state.database) },
    folders: config.folders.map((folder) => ({
      ...folder,
      path: at(folder.path),
      moveTo: atIfSet(folder.moveTo),
      mastering: folder.mastering && { ...folder.mastering, outputDir: atIfSet(folder.mastering.outputDir) },
    })),
  };
  checkFolders(resolved.folders);
  return resolved;
}

/**
 * Each file must belong to exactly one folder: its Session-Id, dedup scope
 * and after-upload action all hang off that folder.
 */
function checkFolders(folders: readonly FolderConfig[]): void {
  folders.forEach((folder, index) => {
    folders.slice(0, index).forEach((earlier, earlierIndex) => {
      const key = `folders[${index}].path`;
      const other = `folders[${earlierIndex}].path (${earlier.path})`;
      if (folder.path === earlier.path) {
        throw new ConfigError(key, `expected a folder not already watched, got ${folder.path}, the same as ${other}`);
      }
      if (contains(earlier.path, folder.path)) {
        throw new ConfigError(key, `expected a folder outside ${other}, got ${folder.path}`);
      }
      if (contains(folder.path, earlier.path)) {
        throw new ConfigError(key, `expected a folder not containing ${other}, got ${folder.path}`);
      }
    });
    if (folder.moveTo === undefined) return;
    const key = `folders[${index}].moveTo`;
    // A file moved into a watched folder would be found and uploaded again.
    if (folder.moveTo === folder.path) {
      throw new ConfigError(key, `expected a folder other than folders[${index}].path, got ${folder.moveTo}`);
    }
    folders.forEach((other, otherIndex) => {
      if (otherIndex !== index && (folder.moveTo === other.path || contains(other.path, folder.moveTo!))) {
        throw new ConfigError(key, `expected a folder outside folders[${otherIndex}].path (${other.path}), got ${folder.moveTo}`);
      }
    });
  });
}

function contains(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative !== '' && relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
}

/** `outputDir`, or `Masters` inside the watched folder (which is then excluded from watching). */
export function mastersDirectory(folder: FolderConfig): string {
  return folder.mastering?.outputDir ?? path.join(folder.path, 'Masters');
}
