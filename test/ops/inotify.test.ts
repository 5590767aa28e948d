import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import type { FileSystem } from '../../src/watch/fileSystem.js';
import { inotifyInstances, inotifyWatches, instancesInUse } from '../../src/ops/inotify.js';
import { folderFilter } from '../../src/pipeline/folder.js';
import { walkFiles } from '../../src/watch/walk.js';
import { watchFolder } from '../../src/watch/watcher.js';
import { inotifyInUse } from '../helpers/inotify.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-inotify-');
const local = (): FileSystem => ({ type: 'ext4', mountPoint: '/', network: false });
const share = (): FileSystem => ({ type: 'cifs', mountPoint: '/srv/nas', network: true });

/**
 * A folder as the watcher sees it: 3 directories it watches (root, album,
 * album/stems), holding 5 files; junk, #recycle, the ignored scratch, the
 * moveTo folder and a symlink it leaves alone.
 */
function folderTree(folderYaml = '') {
  const dir = tempDir();
  const inbox = join(dir, 'in');
  for (const sub of ['album/stems', '#recycle', 'uploaded', 'scratch']) mkdirSync(join(inbox, sub), { recursive: true });
  for (const file of ['a.wav', 'notes.txt', 'album/b.wav', 'album/session.als', 'album/stems/c.wav']) writeFileSync(join(inbox, file), '');
  for (const file of ['.DS_Store', 'x.wav.part', '#recycle/old.wav', 'uploaded/done.wav', 'scratch/s.wav']) writeFileSync(join(inbox, file), '');
  symlinkSync('/etc', join(inbox, 'elsewhere'));
  return parseConfig(`folders:\n  - path: ./in\n    afterUpload: move\n    moveTo: ./in/uploaded\n    ignore: [scratch]\n${folderYaml}`, dir);
}

/** A stand-in for /proc/sys/fs/inotify. */
function limits(watches: number, instances = 128): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'max_user_watches'), `${watches}\n`);
  writeFileSync(join(dir, 'max_user_instances'), `${instances}\n`);
  return dir;
}

describe('inotify watches', () => {
  it('counts as many watches as the daemon\'s watcher takes, in one instance for any number of folders', async () => {
    const before = inotifyInUse();
    const configs = [folderTree(), folderTree('    recursive: false\n')];
    const watches = [];
    try {
      // As the daemon's startup walk does: each directory it lists is watched first.
      for (const { folders: [folder] } of configs) {
        const filter = folderFilter(folder!);
        const watch = watchFolder({ recursive: folder!.recursive, isIgnored: filter.isIgnored, onPath: () => {}, onDirectoryAdded: () => {}, onDirectoryRemoved: () => {}, onOwnEvent: () => {}, onError: (error) => expect.fail(String(error)) });
        watches.push(watch);
        const walk = walkFiles(folder!.path, { recursive: folder!.recursive, isIgnored: filter.isIgnoredEntry, onDirectory: watch.add, onUnreadableDirectory: (dir) => expect.fail(dir) });
        for await (const _files of walk);
      }
      const taken = inotifyInUse();
      expect(taken.watches - before.watches).toBe(3 + 1);
      expect(taken.instances).toBe(Math.max(before.instances, 1));
    } finally {
      await Promise.all(watches.map((watch) => watch.close()));
    }
  });

  it('counts what the watcher really watches: each directory, not files, not ignored ones', async () => {
    expect(await inotifyWatches(folderTree(), { procDir: limits(1000), fileSystemOf: local })).toEqual({
      verdict: 'PASS',
      check: 'inotify watches',
      detail: '3 needed (one per watched folder and sub-folder; polled folders need none), the limit is 1000',
    });
  });

  it('counts only the root for a folder that is not recursive', async () => {
    const line = await inotifyWatches(folderTree('    recursive: false\n'), { procDir: limits(1000), fileSystemOf: local });
    expect(line.detail).toMatch(/^1 needed /);
  });

  it('fails past the limit and warns close to it, naming the sysctl fix', async () => {
    expect(await inotifyWatches(folderTree(), { procDir: limits(2), fileSystemOf: local })).toMatchObject({
      verdict: 'FAIL',
      detail: expect.stringMatching(/, the limit is 2; raise it: echo fs\.inotify\.max_user_watches=524288 \| sudo tee -a \/etc\/sysctl\.d\/90-cryomix-watch\.conf && sudo sysctl --system$/),
    });
    expect((await inotifyWatches(folderTree(), { procDir: limits(2), fileSystemOf: local })).verdict).toBe('FAIL');
    expect((await inotifyWatches(folderTree(), { procDir: limits(3), fileSystemOf: local })).verdict).toBe('WARN');
  });

  it('does not count folders the daemon polls: always, or auto on a network share', async () => {
    for (const [yaml, fileSystem] of [['    polling: always\n', local], ['    polling: auto\n', share]] as const) {
      const line = await inotifyWatches(folderTree(yaml), { procDir: limits(5), fileSystemOf: fileSystem });
      expect(line).toMatchObject({ verdict: 'PASS', detail: expect.stringMatching(/^0 needed/) });
    }
  });
});

describe('inotify instances', () => {
  it('needs one for any number of watched folders, none when all are polled', () => {
    const config = folderTree();
    const two = { ...config, folders: [config.folders[0]!, config.folders[0]!] };
    expect(inotifyInstances(two, { procDir: limits(1000, 128), fileSystemOf: local })).toMatchObject({ verdict: 'PASS', detail: expect.stringMatching(/^1 needed \(one per process, whatever the number of folders\); \d+ of 128 already open by uid \d+$/) });
    expect(inotifyInstances(config, { procDir: limits(1000, 128), fileSystemOf: share })).toMatchObject({ verdict: 'PASS', detail: 'none needed: every folder is polled' });
  });

  it('fails when the user has none left, with the sysctl fix', () => {
    const inUse = instancesInUse('/proc', process.getuid!());
    expect(inotifyInstances(folderTree(), { procDir: limits(1000, inUse), fileSystemOf: local })).toMatchObject({
      verdict: 'FAIL',
      detail: expect.stringMatching(/none left; raise it: echo fs\.inotify\.max_user_instances=512 \| sudo tee -a/),
    });
  });
});
