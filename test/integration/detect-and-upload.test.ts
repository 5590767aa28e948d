import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunk, fmtChunk, mp3File, pcmWav, wav } from '../helpers/audio.js';
import { createWorkspace, jobFor, listJobs, useWorkspace, waitUntil, waitForState } from '../helpers/daemon.js';

const { sandbox, workspace, tempDir, startDaemon } = useWorkspace();
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const uploadRequests = () => sandbox.requests().filter((r) => r.endpoint === 'multi-upload');

describe('detect → settle → upload', () => {
  it('uploads WAV and MP3 files with odd names, storing exactly their bytes', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const files = {
      'Song with spaces.wav': pcmWav(300_000),
      'Ünïcödé – mix "v2".WAV': pcmWav(200_000),
      "it's a 'quote'.mp3": mp3File(150_000),
    };
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(workspace.inbox, name), bytes);

    const jobs = await waitUntil(async () => {
      const rows = await listJobs(workspace);
      return rows.length === 3 && rows.every((r) => r.state === 'done') && rows;
    });
    for (const [name, bytes] of Object.entries(files)) {
      const job = jobs.find((j) => j.path === join(workspace.inbox, name))!;
      expect(job.sha256).toBe(sha256(bytes));
      const stored = sandbox.objects().filter((o) => o.sessionId === job.sessionId);
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatchObject({ sha256: sha256(bytes), size: bytes.length, objectName: name });
    }
    expect(sandbox.objects().find((o) => o.objectName.endsWith('.mp3'))?.contentType).toBe('audio/mpeg');
    expect(sandbox.objects().find((o) => o.objectName === 'Song with spaces.wav')?.contentType).toBe('audio/wav');
  });

  it('finds files in a folder moved in whole, and in a new sub-folder, and notices a sub-folder moved out', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    // Written outside, then moved in with one rename: no event names the files themselves.
    const album = join(workspace.dir, 'Album');
    mkdirSync(join(album, 'Stems'), { recursive: true });
    writeFileSync(join(album, 'Track 1.wav'), pcmWav(21_000));
    writeFileSync(join(album, 'Stems', 'Drums.wav'), pcmWav(22_000));
    renameSync(album, join(workspace.inbox, 'Album'));
    await waitForState(workspace, join(workspace.inbox, 'Album', 'Track 1.wav'), 'done');
    await waitForState(workspace, join(workspace.inbox, 'Album', 'Stems', 'Drums.wav'), 'done');

    mkdirSync(join(workspace.inbox, 'New', 'Deeper'), { recursive: true });
    writeFileSync(join(workspace.inbox, 'New', 'Deeper', 'Late.wav'), pcmWav(23_000));
    await waitForState(workspace, join(workspace.inbox, 'New', 'Deeper', 'Late.wav'), 'done');

    // Still settling when its folder leaves: the row is closed as removed, not left waiting.
    const halfDone = join(workspace.inbox, 'Leaving', 'half.wav');
    mkdirSync(join(workspace.inbox, 'Leaving'));
    writeFileSync(halfDone, wav([fmtChunk(), chunk('data', Buffer.alloc(20_000), 0xffffffff)]));
    await waitForState(workspace, halfDone, 'waiting');
    renameSync(join(workspace.inbox, 'Leaving'), join(workspace.dir, 'Left'));
    await waitForState(workspace, halfDone, 'removed');
  });

  it('leaves sub-folders alone in a folder that is not recursive, even one moved in whole', async () => {
    const flat = createWorkspace(tempDir(), sandbox, { folder: { recursive: false } });
    const daemon = startDaemon(flat);
    await daemon.ready();
    const album = join(flat.dir, 'Album');
    mkdirSync(album);
    writeFileSync(join(album, 'Track 1.wav'), pcmWav(21_000));
    renameSync(album, join(flat.inbox, 'Album'));
    const top = join(flat.inbox, 'top.wav');
    writeFileSync(top, pcmWav(22_000));
    await waitForState(flat, top, 'done');
    // Time for a late walk of the moved-in directory, had one been started: nothing below the top level was ever looked at.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await listJobs(flat)).map((job) => job.path)).toEqual([top]);
  });

  it('never asks to upload junk, too-small or mislabelled files, and says why', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    writeFileSync(join(workspace.inbox, '._mix.wav'), pcmWav(10_000));
    writeFileSync(join(workspace.inbox, '.DS_Store'), 'x');
    writeFileSync(join(workspace.inbox, 'bounce.wav.tmp'), pcmWav(10_000));
    writeFileSync(join(workspace.inbox, 'notes.txt'), 'hello');
    writeFileSync(join(workspace.inbox, 'tiny.wav'), pcmWav(100));
    writeFileSync(join(workspace.inbox, 'really-mp3.wav'), mp3File(20_000));

    const tiny = await waitForState(workspace, join(workspace.inbox, 'tiny.wav'), 'rejected');
    expect(tiny.error).toMatch(/too small: 144 bytes, the minimum is 1000/);
    const mislabelled = await waitUntil(async () => {
      const job = await jobFor(workspace, join(workspace.inbox, 'really-mp3.wav'));
      return job?.state === 'rejected' && job;
    });
    expect(mislabelled.error).toMatch(/MP3/);
    expect((await listJobs(workspace)).map((j) => j.path).sort()).toEqual([join(workspace.inbox, 'really-mp3.wav'), join(workspace.inbox, 'tiny.wav')]);
    expect(uploadRequests()).toHaveLength(0);
  });

  it('waits for a DAW to patch its placeholder WAV header, even across pauses longer than settleSeconds', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const path = join(workspace.inbox, 'bounce.wav');
    const audio = pcmWav(400_000).subarray(44);
    // DAW style: header with zero sizes first, audio in bursts, header patched last.
    writeFileSync(path, wav([fmtChunk(), chunk('data', Buffer.alloc(0), 0)], { riffSize: 0 }));
    for (let offset = 0; offset < audio.length; offset += 100_000) {
      appendFileSync(path, audio.subarray(offset, offset + 100_000));
      await new Promise((resolve) => setTimeout(resolve, 600)); // longer than settleSeconds (0.3 s)
    }
    expect((await jobFor(workspace, path))?.state).toBe('waiting');
    expect(uploadRequests()).toHaveLength(0);

    const file = await open(path, 'r+');
    const sizes = Buffer.alloc(4);
    sizes.writeUInt32LE(36 + audio.length);
    await file.write(sizes, 0, 4, 4);
    sizes.writeUInt32LE(audio.length);
    await file.write(sizes, 0, 4, 40);
    await file.close();

    const done = await waitForState(workspace, path, 'done');
    expect(sandbox.objects().filter((o) => o.sessionId === done.sessionId)).toHaveLength(1);
    expect(sandbox.objects()[0]!.size).toBe(44 + audio.length);
  });

  it('does not send the same bytes twice from one folder: a copy is marked as a duplicate', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const original = join(workspace.inbox, 'mix.wav');
    writeFileSync(original, pcmWav(200_000));
    await waitUntil(async () => (await jobFor(workspace, original))?.state === 'done');
    const copy = join(workspace.inbox, 'mix copy.wav');
    copyFileSync(original, copy);
    const duplicate = await waitForState(workspace, copy, 'done');
    expect(duplicate.duplicateOf).toBe(original);
    expect(sandbox.objects()).toHaveLength(1);
  });

  it('reads a same-size file twice (hash, then upload) only when its first 64 KiB match an earlier upload', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const bytes = pcmWav(200_000);
    const original = join(workspace.inbox, 'mix.wav');
    writeFileSync(original, bytes);
    await waitForState(workspace, original, 'done');
    const variant = (name: string, offset: number) => {
      const changed = Buffer.from(bytes);
      changed[offset] = changed[offset]! ^ 0xff;
      const path = join(workspace.inbox, name);
      writeFileSync(path, changed);
      return path;
    };
    const newStart = variant('mix, new intro.wav', 1_000);
    const newEnd = variant('mix, new ending.wav', 150_000);
    for (const path of [newStart, newEnd]) expect((await waitForState(workspace, path, 'done')).duplicateOf).toBeNull();
    const hashedFirst = daemon.logs.filter((r) => String(r.msg).includes('hashing it whole first')).map((r) => r.file);
    expect(hashedFirst).toEqual([newEnd]);
    expect(sandbox.objects()).toHaveLength(3);
  });
});
