import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { watchFolder, type FolderWatch, type FolderWatchOptions } from '../../src/watch/watcher.js';
import { inotifyInUse } from '../helpers/inotify.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-watcher-');
const watcherModule = fileURLToPath(new URL('../../dist/watch/watcher.js', import.meta.url));
let open: FolderWatch[] = [];

afterEach(async () => {
  await Promise.all(open.map((watch) => watch.close()));
  open = [];
});

/** A watcher whose callbacks are recorded, with a way to wait until one of them says what a test expects. */
function recordedWatch(options: Partial<FolderWatchOptions> = {}) {
  const events: string[] = [];
  const errors: unknown[] = [];
  const watch = watchFolder({
    recursive: true,
    isIgnored: (path) => path.includes('#recycle'),
    onPath: (path) => events.push(`path ${path}`),
    onDirectoryAdded: (dir) => events.push(`added ${dir}`),
    onDirectoryRemoved: (dir) => events.push(`removed ${dir}`),
    onOwnEvent: (dir) => events.push(`own ${dir}`),
    onError: (error) => errors.push(error),
    ...options,
  });
  open.push(watch);
  const seen = async (event: string) => {
    await expect.poll(() => events, { timeout: 5_000, interval: 20 }).toContain(event);
  };
  return { watch, events, errors, seen };
}

describe('watchFolder', () => {
  it('names each file created or written in a watched directory, and nothing for an ignored one', async () => {
    const root = tempDir();
    mkdirSync(join(root, '#recycle'));
    const { watch, events, errors, seen } = recordedWatch();
    watch.add(root);
    writeFileSync(join(root, '#recycle', 'old.wav'), 'x');
    writeFileSync(join(root, 'mix.wav'), 'x');
    await seen(`path ${join(root, 'mix.wav')}`);
    expect(events.filter((event) => event.includes('#recycle'))).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('takes one inotify watch per directory added, only once however often it is added, and gives them all back on close', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'album'));
    writeFileSync(join(root, 'album', 'a.wav'), 'x');
    const before = inotifyInUse().watches;
    const { watch } = recordedWatch();
    for (const dir of [root, join(root, 'album'), root]) watch.add(dir);
    expect(inotifyInUse().watches - before).toBe(2);
    await watch.close();
    expect(inotifyInUse().watches).toBe(before);
  });

  it('reports a new sub-directory for the caller to walk, and a removed one with every watch below it', async () => {
    const root = tempDir();
    const { watch, events, seen } = recordedWatch();
    watch.add(root);
    const album = join(root, 'album');
    mkdirSync(album);
    await seen(`added ${album}`);
    // The caller's walk adds it and what is below it, as the daemon's does.
    mkdirSync(join(album, 'stems'));
    watch.add(album);
    watch.add(join(album, 'stems'));
    rmSync(album, { recursive: true });
    await seen(`removed ${album}`);
    // No longer taken for watched: made again, it is reported again.
    events.length = 0;
    mkdirSync(album);
    await seen(`added ${album}`);
  });

  it('walks a directory again that was removed and made anew at the same path between two looks', async () => {
    const root = tempDir();
    const album = join(root, 'album');
    mkdirSync(album);
    const { watch, seen } = recordedWatch();
    watch.add(root);
    watch.add(album);
    // In one turn of the event loop, as `rm -rf out && mkdir out` from a script: both events find a directory there.
    rmSync(album, { recursive: true });
    mkdirSync(album);
    await seen(`removed ${album}`);
    await seen(`added ${album}`);
  });

  it('says when a watched directory itself is removed, though one is made again at once at its path (no parent watch says so for the root)', async () => {
    const root = tempDir();
    const { watch, seen } = recordedWatch();
    watch.add(root);
    // As fast as a script: the new directory's birth time and ctime are often the same tick, and ext4 reuses the inode number.
    rmSync(root, { recursive: true });
    mkdirSync(root);
    writeFileSync(join(root, 'late.wav'), 'x');
    await seen(`own ${root}`);
  });

  it('does not take a child named like its directory for the directory itself', async () => {
    const root = tempDir();
    const namesake = join(root, basename(root));
    const { watch, events, seen } = recordedWatch();
    watch.add(root);
    writeFileSync(namesake, 'x');
    await seen(`path ${namesake}`);
    mkdirSync(join(root, 'later'));
    await seen(`added ${join(root, 'later')}`);
    expect(events.filter((event) => event.startsWith('own '))).toEqual([]);
  });

  it('walks both directories again when two are swapped by renames', async () => {
    const root = tempDir();
    const [current, fresh, old] = ['B', 'B.new', 'B.old'].map((name) => join(root, name)) as [string, string, string];
    for (const dir of [current, fresh]) mkdirSync(dir);
    const { watch, seen } = recordedWatch();
    for (const dir of [root, current, fresh]) watch.add(dir);
    renameSync(current, old);
    renameSync(fresh, current);
    for (const event of [`removed ${current}`, `added ${current}`, `added ${old}`, `removed ${fresh}`]) await seen(event);
  });

  it('sees a directory moved within the folder as removed at its old path and added at its new one', async () => {
    const root = tempDir();
    const before = join(root, 'before');
    const after = join(root, 'after');
    mkdirSync(before);
    const { watch, seen } = recordedWatch();
    watch.add(root);
    watch.add(before);
    renameSync(before, after);
    await seen(`removed ${before}`);
    await seen(`added ${after}`);
  });

  it('leaves sub-directories alone for a folder that is not recursive', async () => {
    const root = tempDir();
    const { watch, events, seen } = recordedWatch({ recursive: false });
    watch.add(root);
    mkdirSync(join(root, 'album'));
    writeFileSync(join(root, 'mix.wav'), 'x');
    await seen(`path ${join(root, 'mix.wav')}`);
    expect(events.filter((event) => !event.startsWith('path '))).toEqual([]);
  });

  it('skips a directory that is gone before it could be watched: its parent reports that', () => {
    const before = inotifyInUse().watches;
    const { watch, errors } = recordedWatch();
    watch.add(join(tempDir(), 'vanished'));
    expect(inotifyInUse().watches).toBe(before);
    expect(errors).toEqual([]);
  });

  // Root may watch any directory, so when run as root the watcher runs as user nobody (uid 65534) in a child process.
  it('reports a directory it cannot watch as a WatchError naming it and the fix, once however often it is tried', () => {
    const root = tempDir();
    chmodSync(root, 0o755);
    const locked = join(root, 'locked');
    mkdirSync(locked, { mode: 0o000 });
    chmodSync(locked, 0o000);
    const script = `
      const { watchFolder } = await import(${JSON.stringify(watcherModule)});
      const errors = [];
      const watch = watchFolder({ recursive: true, isIgnored: () => false, onPath() {}, onDirectoryAdded() {}, onDirectoryRemoved() {}, onOwnEvent() {}, onError: (e) => errors.push({ name: e.name, code: e.code, directory: e.directory, message: e.message }) });
      watch.add(${JSON.stringify(locked)});
      watch.add(${JSON.stringify(locked)});
      console.log(JSON.stringify({ errors }));
      await watch.close();`;
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', ...asNobody });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({
      errors: [{ name: 'WatchError', code: 'WATCH_FAILED', directory: locked, message: expect.stringMatching(new RegExp(`^cannot watch ${locked}: .*permission denied.*; check its permissions\\. Until it can be, files written there are found by the folder's rescan \\(rescanIntervalSeconds\\), which also tries to watch it again$`, 'i')) }],
    });
  });
});
