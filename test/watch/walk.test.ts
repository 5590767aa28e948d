import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { walkFiles } from '../../src/watch/walk.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-walk-');
const walkModule = fileURLToPath(new URL('../../dist/watch/walk.js', import.meta.url));

describe('walkFiles', () => {
  it('prunes ignored directories and does not follow directory symlinks', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    mkdirSync(join(root, '#recycle'));
    writeFileSync(join(root, 'a', 'b', 'deep.wav'), '');
    writeFileSync(join(root, '#recycle', 'old.wav'), '');
    const seen: string[] = [];
    for await (const { files } of walkFiles(root, { recursive: true, isIgnored: (p) => p.endsWith('#recycle'), onUnreadableDirectory: () => {} })) seen.push(...files);
    expect(seen).toEqual([join(root, 'a', 'b', 'deep.wav')]);
  });

  it('yields the files of one directory together, and nothing for a directory without files', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'album', 'empty'), { recursive: true });
    for (const name of ['1.wav', '2.wav', '3.wav']) writeFileSync(join(root, 'album', name), '');
    writeFileSync(join(root, 'mix.wav'), '');
    const batches: { directory: string; files: string[] }[] = [];
    for await (const { directory, files } of walkFiles(root, { recursive: true, isIgnored: () => false, onUnreadableDirectory: () => {} })) batches.push({ directory, files: files.sort() });
    expect(batches).toEqual([
      { directory: root, files: [join(root, 'mix.wav')] },
      { directory: join(root, 'album'), files: ['1.wav', '2.wav', '3.wav'].map((name) => join(root, 'album', name)) },
    ]);
  });

  it('announces each directory before it lists it, so that a watch added then misses nothing', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'album'));
    const created: string[] = [];
    const listed: string[] = [];
    // A file made when a directory is announced stands for one written just after its watch was added.
    const onDirectory = (dir: string) => {
      const early = join(dir, 'early.wav');
      writeFileSync(early, '');
      created.push(early);
    };
    for await (const { files } of walkFiles(root, { recursive: true, isIgnored: () => false, onDirectory, onUnreadableDirectory: () => {} })) listed.push(...files);
    expect(listed.sort()).toEqual(created.sort());
  });

  // Root reads any directory, so when run as root the walk runs as user nobody (uid 65534) in a child process.
  it('reports an unreadable sub-directory and walks on, instead of abandoning the scan', () => {
    const root = tempDir();
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'aaa-locked'));
    mkdirSync(join(root, 'zzz-album'));
    writeFileSync(join(root, 'zzz-album', 'found.wav'), '');
    chmodSync(join(root, 'aaa-locked'), 0o000);
    const script = `
      const { walkFiles } = await import(${JSON.stringify(walkModule)});
      const seen = [], unreadable = [];
      for await (const p of walkFiles(${JSON.stringify(root)}, { recursive: true, isIgnored: () => false, onUnreadableDirectory: (d) => unreadable.push(d) })) seen.push(...p.files);
      console.log(JSON.stringify({ seen, unreadable }));`;
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', ...asNobody });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ seen: [join(root, 'zzz-album', 'found.wav')], unreadable: [join(root, 'aaa-locked')] });
  });

  it('throws when the root itself cannot be read (an unmounted share), so nothing is concluded from it', async () => {
    const walk = walkFiles(join(tempDir(), 'not-mounted'), { recursive: true, isIgnored: () => false, onUnreadableDirectory: () => {} });
    await expect(walk.next()).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
