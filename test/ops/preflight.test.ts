import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { databaseFileSystem, freeSpace, inotifyWatches } from '../../src/ops/preflight.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-preflight-');

function folderWith(files: number, polling = 'auto') {
  const dir = tempDir();
  mkdirSync(join(dir, 'in', 'album'), { recursive: true });
  for (let n = 0; n < files; n++) writeFileSync(join(dir, 'in', 'album', `${n}.wav`), '');
  return parseConfig(`folders:\n  - path: ./in\n    polling: ${polling}\n`, dir);
}

/** A stand-in for /proc/sys/fs/inotify with the given limit. */
function inotifyLimit(limit: number): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'max_user_watches'), `${limit}\n`);
  return dir;
}

describe('preflight', () => {
  it('fails when the folders need more inotify watches than the limit, naming the sysctl fix', async () => {
    const line = await inotifyWatches(folderWith(10), inotifyLimit(5));
    expect(line.verdict).toBe('FAIL');
    expect(line.detail).toMatch(/^12 files and folders to watch, the limit is 5; raise it: echo fs\.inotify\.max_user_watches=\d+ \| sudo tee/);
  });

  it('warns close to the limit, passes well below it, and does not count polled folders', async () => {
    expect((await inotifyWatches(folderWith(10), inotifyLimit(14))).verdict).toBe('WARN');
    expect((await inotifyWatches(folderWith(10), inotifyLimit(1000))).verdict).toBe('PASS');
    expect((await inotifyWatches(folderWith(10, 'always'), inotifyLimit(5))).detail).toBe('0 of 5 watches needed');
  });

  it('passes a database and an output folder on this machine\'s local disk, even before they exist', () => {
    const dir = tempDir();
    expect(databaseFileSystem(join(dir, 'state', 'state.db'))).toMatchObject({ verdict: 'PASS' });
    expect(freeSpace(join(dir, 'masters'))).toMatchObject({ verdict: expect.stringMatching(/PASS|WARN/), detail: expect.stringMatching(/GiB free/) });
  });
});
