import { describe, expect, it } from 'vitest';
import { fileSystemOf, mountFor, parseMountInfo } from '../../src/ops/fileSystem.js';

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
});
