import { readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';

export interface FileSystem {
  /** As the kernel names it: ext4, tmpfs, cifs, nfs4, fuse.sshfs… */
  type: string;
  mountPoint: string;
  /** A network or FUSE file system: no inotify events from other machines, and unsafe for SQLite's WAL. */
  network: boolean;
}

const NETWORK_TYPES = /^(cifs|smb2|smb3|smbfs|nfs|nfs4|ncpfs|afs|9p|ceph|glusterfs|fuse(\..*)?|fuseblk)$/;

/** Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mounts of this process, from the text of /proc/self/mountinfo. */
export function parseMountInfo(text: string): { mountPoint: string; type: string }[] {
  return text
    .split('\n')
    .filter((line) => line.includes(' - '))
    .map((line) => {
      const [before, after] = line.split(' - ') as [string, string];
      return { mountPoint: unescape(before.split(' ')[4] ?? ''), type: after.split(' ')[0] ?? '' };
    });
}

/**
 * The mount holding an absolute, resolved path: the one with the longest
 * mount point containing it. Later lines win a tie, since a mount over a
 * mount point hides the earlier one.
 */
export function mountFor(path: string, mounts: readonly { mountPoint: string; type: string }[]): FileSystem | undefined {
  let best: { mountPoint: string; type: string } | undefined;
  for (const mount of mounts) {
    const contains = mount.mountPoint === '/' || path === mount.mountPoint || path.startsWith(`${mount.mountPoint}/`);
    if (contains && (!best || mount.mountPoint.length >= best.mountPoint.length)) best = mount;
  }
  return best && { ...best, network: NETWORK_TYPES.test(best.type) };
}

/** The file system holding `path`, or its nearest existing parent (a DB about to be created). */
export function fileSystemOf(path: string, mountInfo = readFileSync('/proc/self/mountinfo', 'utf8')): FileSystem | undefined {
  let existing = path;
  for (;;) {
    try {
      return mountFor(realpathSync(existing), parseMountInfo(mountInfo));
    } catch {
      if (dirname(existing) === existing) return undefined;
      existing = dirname(existing);
    }
  }
}
