import { dirname, posix } from 'node:path';
import { mastersDirectory, type Config } from '../config/index.js';
import { CryomixWatchError } from '../errors.js';
import { mountFor } from '../watch/fileSystem.js';

/*
 * The site drop-in for cryomix-watch.service. The unit makes the whole file
 * system read-only (ProtectSystem=strict); this lists what the daemon must
 * write: each watch root (moved and deleted originals, the default Masters
 * folder), each moveTo and mastering outputDir outside it, and a state
 * database outside StateDirectory.
 *
 * What must stay true: systemd turns every ReadWritePaths= entry into a bind
 * mount of its own, and rename()/link() between two mounts fail with EXDEV
 * even on one file system. So a root and the moveTo it moves files into are
 * one entry (their nearest common folder) when they share a file system,
 * and no entry is nested in another.
 */

/** What the generator needs to know about paths on this machine; tests pass their own. */
export interface PathFacts {
  /** The path with symlinks resolved in its existing part (the rest appended unchanged). */
  realPath(path: string): string;
  exists(path: string): boolean;
}

export interface DropInInput {
  config: Pick<Config, 'folders' | 'state'>;
  /** The mount table, e.g. `parseMountInfo(/proc/self/mountinfo)`. */
  mounts: readonly { mountPoint: string; type: string }[];
  paths: PathFacts;
  /** Named in the header, so a reader knows what to regenerate from. */
  configFile: string;
  /** The unit's StateDirectory=; a database inside it needs no entry. */
  stateDirectory?: string;
}

export interface DropIn {
  text: string;
  /** Things the drop-in cannot fix, for a person to read (one sentence each). */
  warnings: string[];
}

/** A path systemd's unit-file syntax cannot carry. */
export class DropInError extends CryomixWatchError {
  constructor(message: string) {
    super('DROP_IN_PATH', message);
  }
}

export const DROP_IN_NAME = '10-folders.conf';
const STATE_DIRECTORY = '/var/lib/cryomix-watch';

/**
 * Common folders that would open up the OS or every user's home: a root and
 * its moveTo meeting only there stay two entries (moves then copy, not rename).
 */
const TOO_WIDE = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib64', '/opt', '/proc', '/root', '/run', '/sbin', '/sys', '/tmp', '/usr', '/var', '/var/tmp']);

interface Entry {
  path: string;
  why: string;
}

/** `path` is `parent` or inside it. */
function within(parent: string, path: string): boolean {
  return path === parent || parent === '/' || path.startsWith(`${parent}/`);
}

function commonAncestor(a: string, b: string): string {
  const left = a.split('/');
  const right = b.split('/');
  let n = 0;
  while (n < left.length && n < right.length && left[n] === right[n]) n++;
  return left.slice(0, n).join('/') || '/';
}

/**
 * One word for systemd: double-quoted so spaces survive, `\` and `"` escaped
 * inside the quotes, `%` doubled since these settings expand specifiers.
 * A newline cannot be written in a unit file at all.
 */
export function quoteUnitPath(path: string): string {
  if (/[\n\r]/.test(path)) throw new DropInError(`${JSON.stringify(path)}: a path with a line break cannot be written in a systemd unit; rename the folder`);
  return `"${path.replace(/[\\"]/g, (c) => `\\${c}`).replace(/%/g, '%%')}"`;
}

function writablePaths(input: DropInInput, warnings: string[]): Entry[] {
  const { config, mounts, paths } = input;
  const mountOf = (path: string) => mountFor(path, mounts)?.mountPoint;
  const entries: Entry[] = [];
  for (const folder of config.folders) {
    const root = paths.realPath(folder.path);
    let rootEntry: Entry = { path: root, why: `watch root ${folder.path}` };
    if (folder.afterUpload === 'move' && folder.moveTo !== undefined) {
      const moveTo = paths.realPath(folder.moveTo);
      const ancestor = commonAncestor(root, moveTo);
      if (within(root, moveTo)) {
        // Inside the root: covered, and one mount.
      } else if (mountOf(root) !== mountOf(moveTo)) {
        entries.push({ path: moveTo, why: `moveTo of ${folder.path}, on another file system (moves copy)` });
      } else if (TOO_WIDE.has(ancestor)) {
        entries.push({ path: moveTo, why: `moveTo of ${folder.path}` });
        warnings.push(
          `${folder.path} and its moveTo ${folder.moveTo} meet only at ${ancestor}, too wide to make writable: each is its own entry, so every move copies the file instead of renaming it; put moveTo inside the watch root or next to it`,
        );
      } else {
        rootEntry = { path: ancestor, why: `watch root ${folder.path} and its moveTo ${folder.moveTo}: one file system, so one entry, or moves fail with EXDEV` };
      }
    }
    entries.push(rootEntry);
    if (folder.mastering) entries.push({ path: paths.realPath(mastersDirectory(folder)), why: `masters of ${folder.path}` });
    if (within('/tmp', root) || within('/var/tmp', root)) {
      warnings.push(`${folder.path} is under ${within('/tmp', root) ? '/tmp' : '/var/tmp'}, which PrivateTmp= replaces with the service's own: the daemon would watch an empty folder; move it`);
    }
  }
  const database = paths.realPath(dirname(config.state.database));
  if (!within(input.stateDirectory ?? STATE_DIRECTORY, database)) entries.push({ path: database, why: `state database ${config.state.database}` });
  return entries;
}

/** Drops entries equal to or inside another: a nested bind mount would split one folder into two mounts. */
function outermost(entries: readonly Entry[]): Entry[] {
  const sorted = [...entries].sort((a, b) => a.path.length - b.path.length || a.path.localeCompare(b.path));
  const kept: Entry[] = [];
  for (const entry of sorted) {
    const parent = kept.find((k) => within(k.path, entry.path));
    if (parent) {
      if (!parent.why.includes(entry.why)) parent.why = `${parent.why}; ${entry.why}`;
    } else {
      kept.push({ ...entry });
    }
  }
  return kept.sort((a, b) => a.path.localeCompare(b.path));
}

/** A comment line stays one line whatever the paths in it hold. */
function comment(text: string): string {
  return `# ${text.replace(/[\r\n]+/g, ' ')}`;
}

/** The text of the drop-in for this config on this machine, and what it could not arrange. */
export function siteDropIn(input: DropInInput): DropIn {
  const warnings: string[] = [];
  const entries = outermost(writablePaths(input, warnings).map((e) => ({ ...e, path: posix.normalize(e.path) })));
  const service: string[] = [];
  const requires: string[] = [];
  for (const entry of entries) {
    const present = input.paths.exists(entry.path);
    if (!present) {
      warnings.push(`${entry.path} does not exist: create it, writable by the cryomix-watch user, then restart the service (until then it is skipped and the daemon cannot write there)`);
    }
    service.push(comment(entry.why), `ReadWritePaths=${quoteUnitPath(`${present ? '' : '-'}${entry.path}`)}`);
    const mountPoint = mountFor(entry.path, input.mounts)?.mountPoint;
    if (mountPoint !== undefined && mountPoint !== '/') requires.push(`RequiresMountsFor=${quoteUnitPath(entry.path)}`);
  }
  const text = [
    `# Written by \`cryomix-watch systemd-drop-in\` from ${input.configFile}.`,
    '# Regenerate it whenever folders change (re-run systemd/install.sh), then',
    '# systemctl daemon-reload && systemctl restart cryomix-watch',
    '# Do not edit: it is rewritten. Your own settings (SupplementaryGroups= for',
    '# NAS share groups…) go in `systemctl edit cryomix-watch` (override.conf).',
    '# One ReadWritePaths= per watch root: each entry is a bind mount, and',
    '# rename() between two of them fails with EXDEV even on one file system.',
    ...(requires.length > 0 ? ['', '[Unit]', '# Folders on their own mount: start only once it is mounted.', ...requires] : []),
    '',
    '[Service]',
    ...service,
    ...warnings.map((warning) => comment(`WARNING: ${warning}`)),
    '',
  ].join('\n');
  return { text, warnings };
}
