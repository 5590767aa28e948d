import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPathFilter, type PathFilter } from '../../src/watch/junk.js';
import { kindFromExtension } from '../../src/watch/sniff.js';
import { walkFiles } from '../../src/watch/walk.js';
import { makeTempDir } from '../helpers/tempDir.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await makeTempDir('cryomix-watch-')));
afterEach(() => cleanup());

/** The startup walk as the daemon does it: prune ignored directories, collect candidates. */
async function walk(filter: PathFilter, root: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (filter.isIgnored(path)) continue;
    if (entry.isDirectory()) found.push(...(await walk(filter, path)));
    else if (entry.isFile() && filter.isCandidate(path)) found.push(path);
  }
  return found.sort();
}

async function touchFiles(root: string, relativePaths: string[]): Promise<void> {
  for (const rel of relativePaths) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), '');
  }
}

describe('createPathFilter: built-in junk', () => {
  const root = '/srv/exports';
  const filter = createPathFilter(root, []);

  it.each([
    '.hidden.wav',
    '._mix.wav',
    '.DS_Store',
    'Thumbs.db',
    'THUMBS.DB',
    'mix.wav.tmp',
    'mix.WAV.TMP',
    'mix.wav.part',
    'mix.mp3.crdownload',
    '~$mix.wav',
    '#recycle',
    '#recycle/mix.wav',
    '@eaDir',
    '@eaDir/mix.wav/SYNOFILE_THUMB_M.jpg',
    '.Trash-1000/files/mix.wav',
    'mix.wav.reapeaks',
    'mix.wav.asd',
    'mix.wav.pkf',
    'Mix.WAV.PKF',
    'album/.git/mix.wav',
    'album/session.tmp/mix.wav',
  ])('ignores %s', (rel) => {
    expect(filter.isIgnored(join(root, rel))).toBe(true);
    expect(filter.isCandidate(join(root, rel))).toBe(false);
  });

  it.each(['mix.wav', 'MIX.WAV', 'a/b/mix.wave', 'song.mp3', 'mix.tmp.wav', 'recycle/mix.wav', 'my~$mix.wav'])('accepts %s', (rel) => {
    expect(filter.isIgnored(join(root, rel))).toBe(false);
    expect(filter.isCandidate(join(root, rel))).toBe(true);
  });

  it('does not ignore directories that hold candidates, but only audio files are candidates', () => {
    expect(filter.isIgnored(join(root, 'album'))).toBe(false);
    expect(filter.isCandidate(join(root, 'notes.txt'))).toBe(false);
    expect(filter.isCandidate(join(root, 'mix.flac'))).toBe(false);
  });

  it('never judges the root or its parents', () => {
    const hiddenRoot = '/home/x/.local/share/#recycle/exports';
    const nested = createPathFilter(hiddenRoot, []);
    expect(nested.isIgnored(hiddenRoot)).toBe(false);
    expect(nested.isIgnored(`${hiddenRoot}/`)).toBe(false);
    expect(nested.isCandidate(join(hiddenRoot, 'mix.wav'))).toBe(true);
    expect(nested.isIgnored(join(hiddenRoot, '.cache'))).toBe(true);
  });

  it('ignores paths outside the root', () => {
    expect(filter.isIgnored('/srv')).toBe(true);
    expect(filter.isIgnored('/srv/exports-old/mix.wav')).toBe(true);
    expect(filter.isIgnored('/srv/exports/../other/mix.wav')).toBe(true);
    expect(filter.isCandidate('/tmp/mix.wav')).toBe(false);
    expect(filter.isIgnored('/srv/exports/..mix.wav')).toBe(true);
  });
});

describe('createPathFilter: user globs and extra directories', () => {
  const root = '/srv/exports';

  it('applies globs relative to the root, ignoring whole directories they match', () => {
    const filter = createPathFilter(root, ['**/scratch/**', 'bounces/old']);
    expect(filter.isIgnored(join(root, 'scratch'))).toBe(true);
    expect(filter.isIgnored(join(root, 'a/scratch/take1.wav'))).toBe(true);
    expect(filter.isIgnored(join(root, 'bounces/old'))).toBe(true);
    expect(filter.isIgnored(join(root, 'bounces/old/v1.wav'))).toBe(true);
    expect(filter.isCandidate(join(root, 'bounces/new/v2.wav'))).toBe(true);
    expect(filter.isCandidate(join(root, 'a/bounces/old/v1.wav'))).toBe(true);
  });

  it('matches slash-less globs against names at any depth, case-insensitively', () => {
    const filter = createPathFilter(root, ['*.bak.wav', 'scratch']);
    expect(filter.isIgnored(join(root, 'mix.bak.wav'))).toBe(true);
    expect(filter.isIgnored(join(root, 'deep/er/Mix.BAK.WAV'))).toBe(true);
    expect(filter.isIgnored(join(root, 'x/scratch/take.wav'))).toBe(true);
    expect(filter.isCandidate(join(root, 'mix.wav'))).toBe(true);
    expect(filter.isCandidate(join(root, 'scratchpad/mix.wav'))).toBe(true);
  });

  it('excludes extra directories with everything below them, but not look-alike siblings', () => {
    const filter = createPathFilter(root, [], [join(root, 'uploaded'), '/srv/exports/masters/']);
    expect(filter.isIgnored(join(root, 'uploaded'))).toBe(true);
    expect(filter.isIgnored(join(root, 'uploaded/2024/mix.wav'))).toBe(true);
    expect(filter.isIgnored(join(root, 'masters/FinalMaster.wav'))).toBe(true);
    expect(filter.isCandidate(join(root, 'uploaded-not/mix.wav'))).toBe(true);
  });

  it('drives a startup walk over a real tree', async () => {
    const root = join(dir, 'inbox');
    await touchFiles(root, [
      'mix.wav',
      'Album/01 Intro.WAVE',
      'Album/02 Song.mp3',
      'Album/._02 Song.mp3',
      'Album/02 Song.mp3.reapeaks',
      'Album/notes.txt',
      '.DS_Store',
      '@eaDir/mix.wav/thumb.wav',
      'scratch/idea.wav',
      'uploaded/old.wav',
      'download.mp3.crdownload',
      'keep.bak.wav',
    ]);
    const filter = createPathFilter(root, ['scratch', '*.bak.wav'], [join(root, 'uploaded')]);
    const expected = ['Album/01 Intro.WAVE', 'Album/02 Song.mp3', 'mix.wav'].map((rel) => join(root, rel)).sort();
    expect(await walk(filter, root)).toEqual(expected);
    // The daemon's walk asks about each entry by name only: the answer must be the same.
    const byEntry: string[] = [];
    for await (const { files } of walkFiles(root, { recursive: true, isIgnored: filter.isIgnoredEntry, onUnreadableDirectory: (d) => expect.fail(d) })) {
      byEntry.push(...files.filter((path) => kindFromExtension(path) !== null));
    }
    expect(byEntry.sort()).toEqual(expected);
  });

  it('judges an entry by its name and the path globs alone, as isIgnored judges its full path', () => {
    const filter = createPathFilter(root, ['scratch', 'bounces/old', '*.bak.wav'], [join(root, 'uploaded')]);
    for (const rel of ['bounces/old', 'bounces/new', 'a/scratch', 'mix.bak.wav', 'mix.wav', 'uploaded', 'uploaded-not', '.DS_Store', '@eaDir', 'x.wav.part']) {
      const path = join(root, rel);
      expect(filter.isIgnoredEntry(path, basename(path)), rel).toBe(filter.isIgnored(path));
    }
  });
});
