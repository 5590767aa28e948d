import { chmodSync, mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import type { FileSystem } from '../../src/watch/fileSystem.js';
import { WatchedFolder } from '../../src/pipeline/folder.js';
import { openDatabase } from '../../src/store/db.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import { pcmWav } from '../helpers/audio.js';
import { waitUntil } from '../helpers/daemon.js';
import { inotifyInUse } from '../helpers/inotify.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-polling-');
const running: WatchedFolder[] = [];

afterEach(async () => {
  for (const folder of running.splice(0)) await folder.stop();
});

const share: FileSystem = { type: 'nfs4', mountPoint: '/srv/backup', network: true };
const disk: FileSystem = { type: 'ext4', mountPoint: '/', network: false };


async function startFolder(folderYaml: string, fileSystem?: () => FileSystem | undefined) {
  const dir = tempDir();
  const inbox = join(dir, 'inbox');
  mkdirSync(inbox);
  const config = parseConfig(`folders:\n  - path: ./inbox\n${folderYaml}`, dir);
  const store = new SqliteJobStore(openDatabase(join(dir, 'state.db')));
  const logs: { msg: string; polling?: boolean; level: number }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as (typeof logs)[number]) });
  const folder = new WatchedFolder(config.folders[0]!, {
    store,
    logger,
    sizeLimits: () => ({ minBytes: 1000, maxBytes: 1e9 }),
    onQueued: () => {},
    onSuperseded: () => {},
    onProblemChange: () => {},
    onFatal: (error) => {
      throw error;
    },
    ...(fileSystem ? { fileSystemOf: fileSystem } : {}),
  });
  running.push(folder);
  await folder.start();
  return { dir, inbox, store, logs, folder };
}

describe('a polled folder', () => {
  // A local disk is stat'ed synchronously, a share a few files at a time: both must find the same.
  it.each([
    ['a local disk', disk],
    ['a share', share],
  ])('finds a new file, a new version of it and its removal, without any inotify watch, on %s', async (_where, fileSystem) => {
    const before = inotifyInUse().watches;
    const { inbox, store, logs } = await startFolder('    polling: always\n    pollIntervalSeconds: 0.1\n    settleSeconds: 0.1\n', () => fileSystem);
    expect(inotifyInUse().watches).toBe(before);
    expect(logs.find((l) => l.polling !== undefined)).toMatchObject({ polling: true, msg: expect.stringMatching(/polled every 0\.1 s; polling: always/) });

    const mix = join(inbox, 'mix.wav');
    writeFileSync(mix, pcmWav(5000));
    const first = await waitUntil(async () => (await store.current(mix))?.state === 'queued' && await store.current(mix));

    writeFileSync(mix, pcmWav(6000));
    const second = await waitUntil(async () => (await store.current(mix))?.id !== first.id && (await store.current(mix))?.state === 'queued' && await store.current(mix));
    expect(second.size).toBe(first.size + 1000);

    rmSync(mix);
    await waitUntil(async () => (await store.current(mix))?.state === 'removed');
    expect(inotifyInUse().watches).toBe(before);
  });

  it('asks the DB only about files that changed since the last pass', async () => {
    const { inbox, store } = await startFolder('    polling: always\n    pollIntervalSeconds: 0.05\n    settleSeconds: 0.05\n');
    const mixes = ['a.wav', 'b.wav', 'c.wav'].map((name) => join(inbox, name));
    for (const mix of mixes) writeFileSync(mix, pcmWav(5000));
    await waitUntil(async () => (await store.list('queued')).length === mixes.length);
    const lookups = vi.spyOn(store, 'current');
    const directoryLookups = vi.spyOn(store, 'versionsInDirectory');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(lookups).not.toHaveBeenCalled();
    expect(directoryLookups).not.toHaveBeenCalled();
    writeFileSync(mixes[1]!, pcmWav(7000));
    await waitUntil(async () => (await store.current(mixes[1]!))?.size === 7000 + 44 && (await store.current(mixes[1]!))?.state === 'queued');
    expect(new Set(lookups.mock.calls.map(([path]) => path))).toEqual(new Set([mixes[1]]));
    expect(new Set(directoryLookups.mock.calls.map(([, directory]) => directory))).toEqual(new Set([inbox]));
  });

  it('lets a file settle when polled more often than the settle time (a pass must not restart the quiet period)', async () => {
    const { inbox, store } = await startFolder('    polling: always\n    pollIntervalSeconds: 0.05\n    settleSeconds: 0.5\n');
    const mix = join(inbox, 'slow settle.wav');
    writeFileSync(mix, pcmWav(5000));
    await waitUntil(async () => (await store.current(mix))?.state === 'waiting');
    await waitUntil(async () => (await store.current(mix))?.state === 'queued', 5000);
  });
});

describe('polling: auto', () => {
  it('polls a folder on a network file system and watches one on a local disk with inotify', async () => {
    const before = inotifyInUse().watches;
    const polled = await startFolder('    polling: auto\n', () => share);
    expect(inotifyInUse().watches).toBe(before);
    expect(polled.logs.find((l) => l.polling !== undefined)?.msg).toMatch(/polled every 10 s; polling: auto, and nfs4 at \/srv\/backup is a network or FUSE file system/);

    const watched = await startFolder('    polling: auto\n', () => disk);
    expect(inotifyInUse().watches).toBeGreaterThan(before);
    expect(watched.logs.find((l) => l.polling !== undefined)?.msg).toMatch(/watched with inotify; polling: auto, and ext4 at \/ is local/);
  });

  it('decides again when the root comes back as another directory (a share remounted), and says so', async () => {
    let current = disk;
    const { inbox, store, logs } = await startFolder('    polling: auto\n    pollIntervalSeconds: 0.1\n    settleSeconds: 0.1\n', () => current);
    current = share;
    renameSync(inbox, `${inbox}.old`);
    mkdirSync(inbox);
    await waitUntil(() => logs.some((l) => l.polling === true));
    expect(logs.filter((l) => l.polling !== undefined).map((l) => l.polling)).toEqual([false, true]);

    const mix = join(inbox, 'after remount.wav');
    writeFileSync(mix, pcmWav(5000));
    await waitUntil(async () => (await store.current(mix))?.state === 'queued');
  });

  it('does not walk an inotify root again when only its permissions or times change, which its watch reports like a removal', async () => {
    const { inbox, logs } = await startFolder('    polling: never\n    pollIntervalSeconds: 0.1\n', () => disk);
    chmodSync(inbox, 0o750);
    utimesSync(inbox, new Date(), new Date());
    // Several root checks (every 0.1 s here) pass.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(logs.filter((l) => /is back \(or was replaced\)/.test(l.msg))).toEqual([]);
  });

  it('warns once when polling: never is set on a network file system', async () => {
    const { logs } = await startFolder('    polling: never\n', () => share);
    expect(logs.filter((l) => l.polling !== undefined)).toEqual([expect.objectContaining({ level: 40, polling: false, msg: expect.stringMatching(/go unnoticed/) })]);
  });
});

describe('a waiting file that the settle rule no longer follows', () => {
  it.each([
    ['a poll pass', '    polling: always\n    pollIntervalSeconds: 0.1\n'],
    ['an inotify folder’s rescan', '    polling: never\n    rescanIntervalSeconds: 0.1\n'],
  ])('is looked at again by %s', async (_pass, yaml) => {
    const { inbox, store } = await startFolder(`${yaml}    settleSeconds: 0.1\n`, () => disk);
    const mix = join(inbox, 'mix.wav');
    writeFileSync(mix, pcmWav(5000));
    const job = await waitUntil(async () => (await store.current(mix))?.state === 'queued' && await store.current(mix));
    // Back to waiting behind the settle rule's back, as when its check found the file missing while the share was away
    // for a moment (nothing is marked gone then) and the share came back: the file is unchanged, and no timer follows it.
    await store.transition(job.id, 'removed');
    await store.transition(job.id, 'waiting');
    await waitUntil(async () => (await store.current(mix))?.state === 'queued', 5_000);
  });

  it('that cannot be checked is looked at again once per retry, not once more per pass', async () => {
    const { inbox, store, logs } = await startFolder('    polling: always\n    pollIntervalSeconds: 0.1\n    settleSeconds: 0.1\n', () => disk);
    // A stat that keeps failing with an error that may pass (EIO on a share, EMFILE): here, a name too long to exist.
    await store.createVersion({ folder: inbox, path: join(inbox, `${'x'.repeat(300)}.wav`), size: 5000, mtimeMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(logs.filter((l) => l.msg.startsWith('cannot check')).length).toBe(1);
  });
});
