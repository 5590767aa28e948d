import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureSharedDirectory } from '../../src/files/directory.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-directory-');
/** A group no test user is in, standing for a studio's share group (the tests run as root, who may give any). */
const STUDIO_GID = 4242;

const shape = (path: string) => {
  const { mode, gid } = statSync(path);
  return { mode: (mode & 0o7777).toString(8), gid };
};

/** Runs `work` under `mask`, as the service's UMask= would set it. */
async function withUmask(mask: number, work: () => Promise<void>): Promise<void> {
  const before = process.umask(mask);
  try {
    await work();
  } finally {
    process.umask(before);
  }
}

describe('ensureSharedDirectory', () => {
  it("makes each missing folder with its parent's group and bits, never more than the parent allows", async () => {
    const share = tempDir();
    chownSync(share, 0, STUDIO_GID);
    chmodSync(share, 0o750);
    // The unit's UMask=0002 would allow 0775: the share allows less.
    await withUmask(0o002, () => ensureSharedDirectory(join(share, 'masters', 'Song')));
    expect([shape(join(share, 'masters')), shape(join(share, 'masters', 'Song'))]).toEqual([
      { mode: '750', gid: STUDIO_GID },
      { mode: '750', gid: STUDIO_GID },
    ]);
  });

  it('gives back what a strict umask kept, and leaves folders that exist as they are', async () => {
    const share = tempDir();
    chownSync(share, 0, STUDIO_GID);
    chmodSync(share, 0o2775);
    mkdirSync(join(share, 'private'), { mode: 0o700 });
    await withUmask(0o077, () => ensureSharedDirectory(join(share, 'private', 'kept')));
    await withUmask(0o077, () => ensureSharedDirectory(join(share, 'uploaded', 'session 1')));
    // (setgid from the share, as the kernel makes every folder in it)
    expect(shape(join(share, 'private')).mode).toBe('2700');
    // Below a folder that exists, its own bits are the model.
    expect(shape(join(share, 'private', 'kept')).mode).toBe('2700');
    expect(shape(join(share, 'uploaded'))).toEqual({ mode: '2775', gid: STUDIO_GID });
    expect(shape(join(share, 'uploaded', 'session 1'))).toEqual({ mode: '2775', gid: STUDIO_GID });
  });
});
