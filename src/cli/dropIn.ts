import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { defaultConfigPath, loadConfig } from '../config/index.js';
import { siteDropIn, type PathFacts } from '../ops/dropIn.js';
import { parseMountInfo } from '../watch/fileSystem.js';
import type { GlobalOptions } from './context.js';
import { EXIT_OK } from './exitCodes.js';

/** Symlinks resolved in the part that exists; a folder not created yet keeps the rest of its name. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPath(parent), basename(path));
  }
}

export const machinePaths: PathFacts = { realPath, exists: existsSync };

/**
 * `systemd-drop-in`: prints the site drop-in for the config on stdout (the
 * installer redirects it into /etc/systemd/system/cryomix-watch.service.d/),
 * and what it could not arrange on stderr.
 */
export function dropInCommand(options: GlobalOptions): number {
  const configFile = resolve(options.config ?? defaultConfigPath());
  const config = loadConfig(configFile);
  const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  const { text, warnings } = siteDropIn({ config, mounts, paths: machinePaths, configFile });
  process.stdout.write(text);
  for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
  return EXIT_OK;
}
