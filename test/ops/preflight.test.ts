import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import type { FileSystem } from '../../src/watch/fileSystem.js';
import { databaseFileSystem, folderFileSystem, freeSpace } from '../../src/ops/preflight.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-preflight-');

const share: FileSystem = { type: 'cifs', mountPoint: '/srv/nas', network: true };
const folder = (polling: string) => parseConfig(`folders:\n  - path: /srv/nas/exports\n    polling: ${polling}\n`, '/').folders[0]!;

describe('preflight', () => {
  it('passes a database and an output folder on this machine\'s local disk, even before they exist', () => {
    const dir = tempDir();
    expect(databaseFileSystem(join(dir, 'state', 'state.db'))).toMatchObject({ verdict: 'PASS' });
    expect(freeSpace(join(dir, 'masters'))).toMatchObject({ verdict: expect.stringMatching(/PASS|WARN/), detail: expect.stringMatching(/GiB free/) });
  });

  it('fails a database on a network share', () => {
    expect(databaseFileSystem('/srv/nas/state.db', () => share)).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/cifs at \/srv\/nas, a network file system where SQLite's WAL is unsafe; put state.database on a local disk/) });
  });

  it('warns about polling: never on a network share, naming the folder and the fix', () => {
    expect(folderFileSystem(folder('never'), () => share)).toEqual({
      verdict: 'WARN',
      check: 'file system of /srv/nas/exports',
      detail: expect.stringMatching(/cifs at \/srv\/nas is a network or FUSE file system and this folder has polling: never: .*set polling: auto \(or always\) for \/srv\/nas\/exports$/),
    });
  });

  it('passes a share with polling: auto or always, saying it is polled, and a local folder, saying it is watched', () => {
    expect(folderFileSystem(folder('auto'), () => share)).toMatchObject({ verdict: 'PASS', detail: expect.stringMatching(/^polled every 10 s: polling: auto, and cifs at \/srv\/nas is a network/) });
    expect(folderFileSystem(folder('always'), () => share)).toMatchObject({ verdict: 'PASS', detail: expect.stringMatching(/^polled every 10 s: polling: always/) });
    const local = { type: 'ext4', mountPoint: '/', network: false };
    expect(folderFileSystem(folder('auto'), () => local)).toMatchObject({ verdict: 'PASS', detail: expect.stringMatching(/^watched with inotify: polling: auto, and ext4 at \/ is local/) });
  });

  it('cannot tell the file system of a folder that is not there', () => {
    expect(folderFileSystem(folder('auto'), () => undefined)).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/cannot tell/) });
  });
});
