import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { Config, FolderConfig, PostgresTls } from './schema.js';

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
    state: { ...config.state, database: at(config.state.database), ...(config.state.postgres?.ssl === undefined ? {} : { postgres: { ...config.state.postgres, ssl: tlsFilesAt(config.state.postgres.ssl, at) } }) },
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

/** The TLS files are read relative to the config file too. */
function tlsFilesAt(ssl: PostgresTls, at: (relative: string) => string): PostgresTls {
  if (typeof ssl === 'boolean') return ssl;
  const files = (['ca', 'cert', 'key'] as const).flatMap((name) => (ssl[name] === undefined ? [] : [[name, at(ssl[name])]]));
  return { ...ssl, ...Object.fromEntries(files) };
}

/**
 * Each file must belong to exactly one folder: its Session-Id, dedup scope
 * and after-upload action all hang off that folder. And what the daemon
 * writes (moved originals, downloaded masters) must land where no folder
 * watches, or it would be found and uploaded again; inside its own folder
 * it may go, as that folder skips it.
 */
function checkFolders(folders: readonly FolderConfig[]): void {
  folders.forEach((folder, index) => {
    folders.slice(0, index).forEach((earlier, earlierIndex) => {
      const key = `folders[${index}].path`;
      const other = `folders[${earlierIndex}].path (${earlier.path})`;
      if (folder.path === earlier.path) {
        throw new ConfigError(key, `expected a folder not already watched, got ${folder.path}, the same as ${other}`);
      }
      if (isInside(earlier.path, folder.path)) {
        throw new ConfigError(key, `expected a folder outside ${other}, got ${folder.path}`);
      }
      if (isInside(folder.path, earlier.path)) {
        throw new ConfigError(key, `expected a folder not containing ${other}, got ${folder.path}`);
      }
    });
    const outputs = { moveTo: folder.moveTo, 'mastering.outputDir': folder.mastering?.outputDir };
    for (const [name, output] of Object.entries(outputs)) {
      if (output === undefined) continue;
      const key = `folders[${index}].${name}`;
      const again = 'what is put there would be uploaded again';
      if (output === folder.path) {
        throw new ConfigError(key, `expected a folder other than folders[${index}].path, got ${output}: ${again}`);
      }
      folders.forEach((other, otherIndex) => {
        const watched = `folders[${otherIndex}].path (${other.path})`;
        if (otherIndex !== index && (output === other.path || isInside(other.path, output))) {
          throw new ConfigError(key, `expected a folder outside ${watched}, got ${output}: ${again}`);
        }
        // Moves keep sub-folders and masters get a folder per mix, so either could end up inside a watched folder below.
        if (isInside(output, other.path)) {
          throw new ConfigError(key, `expected a folder that does not contain ${watched}, got ${output}: ${again} once it lands in that folder`);
        }
      });
    }
  });
}

/** Strictly below `root`; the root itself is not inside. */
export function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** `outputDir`, or `Masters` inside the watched folder (which is then excluded from watching). */
export function mastersDirectory(folder: FolderConfig): string {
  return folder.mastering?.outputDir ?? path.join(folder.path, 'Masters');
}
