import { readFileSync, realpathSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { isGone } from '../files/errno.js';

export interface FileSystem {
  /** As the kernel names it: ext4, tmpfs, cifs, nfs4, fuse.sshfs… (from statfs: the name of its magic number). */
  type: string;
  /** Known when /proc/self/mountinfo placed the path; statfs does not say. */
  mountPoint?: string;
  /**
   * A network, cluster, VM-shared or FUSE file system: changes made from
   * another machine (or by the FUSE daemon itself) raise no inotify events
   * here, and SQLite's WAL is unsafe on it.
   */
  network: boolean;
}

/** Where the file system of a path is learnt; tests pass their own. */
export interface FileSystemSources {
  /** The text of /proc/self/mountinfo. Throws where there is none (no /proc mounted, some NAS chroots). */
  mountInfo(): string;
  /** `f_type` of the file system holding an existing path, as `statfs(2)` reports it. */
  statfsType(path: string): bigint;
}

export const systemSources: FileSystemSources = {
  mountInfo: () => readFileSync('/proc/self/mountinfo', 'utf8'),
  statfsType: (path) => statfsSync(path, { bigint: true }).type,
};

const NETWORK_TYPES =
  /^(cifs|smb2|smb3|smbfs|nfs|nfs4|ncpfs|afs|coda|9p|drvfs|ceph|glusterfs|gfs2|ocfs2|lustre|gpfs|beegfs|orangefs|vboxsf|vmhgfs|prl_fs|virtiofs|davfs|fuse(\..*)?|fuseblk)$/;

/**
 * `statfs(2)` magic numbers (linux/magic.h, statfs(2), coreutils' fs.h),
 * named as /proc/self/mountinfo would name the file system, so one pattern
 * decides for both sources.
 */
const MAGIC_NAMES = new Map<bigint, string>([
  // Network, cluster and FUSE.
  [0xfe534d42n, 'smb2'],
  [0xff534d42n, 'cifs'],
  [0x517bn, 'smbfs'],
  [0x6969n, 'nfs'],
  [0x65735546n, 'fuse'],
  [0x01021997n, '9p'],
  [0x00c36400n, 'ceph'],
  [0x5346414fn, 'afs'],
  [0x6b414653n, 'afs'],
  [0x73757245n, 'coda'],
  [0x564cn, 'ncpfs'],
  [0x01161970n, 'gfs2'],
  [0x7461636fn, 'ocfs2'],
  [0x0bd00bd0n, 'lustre'],
  [0x47504653n, 'gpfs'],
  [0x19830326n, 'beegfs'],
  [0x786f4256n, 'vboxsf'],
  [0xbacbacbcn, 'vmhgfs'],
  [0x7c7c6673n, 'prl_fs'],
  // Local.
  [0xef53n, 'ext4'],
  [0x58465342n, 'xfs'],
  [0x9123683en, 'btrfs'],
  [0x2fc12fc1n, 'zfs'],
  [0xca451a4en, 'bcachefs'],
  [0xf2f52010n, 'f2fs'],
  [0x01021994n, 'tmpfs'],
  [0x858458f6n, 'ramfs'],
  [0x794c7630n, 'overlay'],
  [0x4d44n, 'vfat'],
  [0x2011bab0n, 'exfat'],
  [0x5346544en, 'ntfs'],
  [0x482bn, 'hfsplus'],
  [0x3153464an, 'jfs'],
  [0x52654973n, 'reiserfs'],
  [0x3434n, 'nilfs2'],
  [0x73717368n, 'squashfs'],
  [0x15013346n, 'udf'],
  [0x9660n, 'iso9660'],
]);

/**
 * `f_type` is a C `long`: on 32-bit ARM (most NAS boxes) a magic with the top
 * bit set, such as SMB2's 0xFE534D42, arrives sign-extended as a negative
 * number. Its low 32 bits are the magic on every platform.
 */
export function fileSystemOfMagic(statfsType: bigint): FileSystem {
  const magic = statfsType & 0xffffffffn;
  const type = MAGIC_NAMES.get(magic) ?? `unknown (statfs type 0x${magic.toString(16)})`;
  return { type, network: NETWORK_TYPES.test(type) };
}

/** "cifs at /srv/nas", or just "nfs" when statfs told us. */
export function describeFileSystem(fs: FileSystem): string {
  return fs.mountPoint === undefined ? fs.type : `${fs.type} at ${fs.mountPoint}`;
}

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
 * The mount holding an absolute path (resolved where it could be): the one
 * with the longest mount point containing it. Later lines win a tie, since a
 * mount over a mount point hides the earlier one.
 */
export function mountFor(path: string, mounts: readonly { mountPoint: string; type: string }[]): FileSystem | undefined {
  let best: { mountPoint: string; type: string } | undefined;
  for (const mount of mounts) {
    const contains = mount.mountPoint === '/' || path === mount.mountPoint || path.startsWith(`${mount.mountPoint}/`);
    if (contains && (!best || mount.mountPoint.length >= best.mountPoint.length)) best = mount;
  }
  return best && { ...best, network: NETWORK_TYPES.test(best.type) };
}

/** `path` resolved, or its nearest existing parent (a DB about to be created); undefined if nothing resolves. */
function nearestExisting(path: string): string | undefined {
  let existing = path;
  for (;;) {
    try {
      return realpathSync(existing);
    } catch (error) {
      // There but unresolvable (EIO, EACCES from a share): its own path, not its parent's disk, says where it is.
      if (!isGone(error)) return existing;
      // Not there (yet): the parent's file system is where it will be created.
      if (dirname(existing) === existing) return undefined;
      existing = dirname(existing);
    }
  }
}

/**
 * The file system holding `path` (or its nearest existing parent). The mount
 * table is the first source, since it names FUSE subtypes and mount points;
 * `statfs` answers when the table cannot be read or cannot place the path.
 */
export function fileSystemOf(path: string, sources: FileSystemSources = systemSources): FileSystem | undefined {
  const existing = nearestExisting(path);
  if (existing === undefined) return undefined;
  let mountInfo: string | undefined;
  try {
    mountInfo = sources.mountInfo();
  } catch {
    // No /proc here: statfs below is the whole answer.
    mountInfo = undefined;
  }
  const mounted = mountInfo === undefined ? undefined : mountFor(existing, parseMountInfo(mountInfo));
  if (mounted) return mounted;
  try {
    return fileSystemOfMagic(sources.statfsType(existing));
  } catch {
    // Gone between the realpath and here, or unreadable: callers say "cannot tell".
    return undefined;
  }
}
