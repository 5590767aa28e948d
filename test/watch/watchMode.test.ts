import { describe, expect, it } from 'vitest';
import type { FileSystem } from '../../src/watch/fileSystem.js';
import { watchMode } from '../../src/watch/watchMode.js';

const share: FileSystem = { type: 'cifs', mountPoint: '/srv/nas', network: true };
const disk: FileSystem = { type: 'ext4', mountPoint: '/', network: false };

describe('watchMode', () => {
  it('auto polls network and FUSE file systems and watches local ones', () => {
    expect(watchMode('auto', share)).toMatchObject({ poll: true, reason: expect.stringMatching(/cifs at \/srv\/nas is a network or FUSE file system/) });
    expect(watchMode('auto', { type: 'fuse', network: true })).toMatchObject({ poll: true });
    expect(watchMode('auto', disk)).toMatchObject({ poll: false, reason: expect.stringMatching(/ext4 at \/ is local/) });
  });

  it('auto falls back to inotify when the file system is unknown, saying how to force polling', () => {
    expect(watchMode('auto', undefined)).toMatchObject({ poll: false, missesRemoteChanges: false, reason: expect.stringMatching(/set polling: always/) });
  });

  it('always and never are obeyed; never on a share is flagged', () => {
    expect(watchMode('always', disk)).toMatchObject({ poll: true, missesRemoteChanges: false });
    expect(watchMode('never', disk)).toMatchObject({ poll: false, missesRemoteChanges: false });
    expect(watchMode('never', share)).toMatchObject({ poll: false, missesRemoteChanges: true, reason: expect.stringMatching(/go unnoticed/) });
  });
});
