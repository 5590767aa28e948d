import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSystemOf, fileSystemOfMagic, mountFor, parseMountInfo, systemSources, type FileSystemSources } from '../../src/watch/fileSystem.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-fs-');

const MOUNTINFO = [
  '27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw',
  '40 27 0:50 / /srv/nas rw,relatime - cifs //nas/share rw,vers=3.0',
  '41 27 0:51 / /srv/backup rw - nfs4 nas:/backup rw',
  '42 27 0:52 / /home/me/remote rw - fuse.sshfs me@host: rw',
  '43 27 0:53 / /srv/my\\040exports rw - ext4 /dev/sdb1 rw',
  '44 40 0:54 / /srv/nas/local rw - tmpfs none rw',
].join('\n');

describe('fileSystemOf', () => {
  it('reads mount points and types, unescaping spaces', () => {
    expect(parseMountInfo(MOUNTINFO).map((m) => `${m.mountPoint}:${m.type}`)).toContain('/srv/my exports:ext4');
  });

  it.each([
    ['/', 'ext4', false],
    ['/srv/nas', 'cifs', true],
    ['/srv/backup', 'nfs4', true],
    ['/home/me/remote', 'fuse.sshfs', true],
    ['/srv/nas/local', 'tmpfs', false],
  ])('knows %s is %s (network: %s)', (mountPoint, type, network) => {
    expect(mountFor(`${mountPoint}/Album/mix.wav`.replace('//', '/'), parseMountInfo(MOUNTINFO))).toMatchObject({ mountPoint, type, network });
  });

  it('does not mistake a sibling with a common prefix for the mount', () => {
    expect(mountFor('/srv/nasty/mix.wav', parseMountInfo(MOUNTINFO))).toMatchObject({ mountPoint: '/', type: 'ext4' });
  });

  it('finds the file system of a real path on this machine, and of one not created yet', () => {
    expect(fileSystemOf('/tmp')?.type).toBeTruthy();
    expect(fileSystemOf('/tmp/does/not/exist/yet/state.db')?.mountPoint).toBe(fileSystemOf('/tmp')?.mountPoint);
  });

  it('falls back to statfs when the mount table cannot be read, or cannot place the path', () => {
    const noProc: FileSystemSources = { mountInfo: () => { throw new Error('ENOENT: /proc is not mounted'); }, statfsType: () => 0x6969n };
    expect(fileSystemOf('/tmp', noProc)).toEqual({ type: 'nfs', network: true });
    const elsewhere: FileSystemSources = { mountInfo: () => '40 27 0:50 / /srv/nas rw - cifs //nas/share rw', statfsType: () => 0xef53n };
    expect(fileSystemOf('/tmp', elsewhere)).toEqual({ type: 'ext4', network: false });
  });

  it('places a path that exists but cannot be resolved by the path itself, not by its parent', () => {
    // A share that answers with an error (EIO, EACCES) is in the mount table under its own path; its parent is the local disk.
    const share = join(tempDir(), 'share');
    symlinkSync(share, share);
    const table: FileSystemSources = { mountInfo: () => `${MOUNTINFO}\n45 27 0:55 / ${share} rw - cifs //nas/other rw`, statfsType: () => 0xef53n };
    expect(fileSystemOf(share, table)).toMatchObject({ mountPoint: share, type: 'cifs', network: true });
  });

  it('agrees with statfs on this machine about the file system of /tmp', () => {
    const fromTable = fileSystemOf('/tmp');
    const fromStatfs = fileSystemOf('/tmp', { ...systemSources, mountInfo: () => '' });
    expect(fromStatfs?.network).toBe(fromTable?.network);
  });
});

describe('fileSystemOfMagic', () => {
  it.each([
    ['smb2', 0xfe534d42n, true],
    ['cifs', 0xff534d42n, true],
    ['smbfs', 0x517bn, true],
    ['nfs', 0x6969n, true],
    ['fuse', 0x65735546n, true],
    ['9p', 0x01021997n, true],
    ['ceph', 0x00c36400n, true],
    ['ext4', 0xef53n, false],
    ['tmpfs', 0x01021994n, false],
    ['btrfs', 0x9123683en, false],
  ])('knows the statfs magic of %s', (type, magic, network) => {
    expect(fileSystemOfMagic(magic)).toEqual({ type, network });
  });

  it('masks a magic sign-extended by a 32-bit kernel (f_type is a signed long on ARM NAS boxes) to its 32 bits', () => {
    // 0xFE534D42 as a signed 32-bit long is -28095166, which Node hands over as a negative bigint.
    expect(BigInt.asIntN(32, 0xfe534d42n)).toBe(-28095166n);
    expect(fileSystemOfMagic(-28095166n)).toEqual({ type: 'smb2', network: true });
    expect(fileSystemOfMagic(BigInt.asIntN(32, 0xff534d42n))).toEqual({ type: 'cifs', network: true });
    // The same value read as an unsigned 64-bit word.
    expect(fileSystemOfMagic(0xfffffffffe534d42n)).toEqual({ type: 'smb2', network: true });
  });

  it('names an unknown magic by its number, as local', () => {
    expect(fileSystemOfMagic(0x12345678n)).toEqual({ type: 'unknown (statfs type 0x12345678)', network: false });
  });
});
