import { chmod, open, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lookup } from 'mime-types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONTENT_TYPE, contentTypeForPath, inspectFile, kindFromExtension, type Inspection } from '../../src/watch/sniff.js';
import { makeTempDir } from '../helpers/tempDir.js';
import { chunk, ds64Chunk, fmtChunk, id3Tag, mp3Frames, wav } from '../helpers/audio.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await makeTempDir('cryomix-watch-')));
afterEach(() => cleanup());

describe('content types', () => {
  // Written out in sniff.ts so that the daemon need not load mime-types' database; they must stay what it says.
  it('are what mime-types gives for .wav and .mp3, whatever the case of the extension', () => {
    expect(CONTENT_TYPE).toEqual({ wav: lookup('wav'), mp3: lookup('mp3') });
    expect(contentTypeForPath('/in/Mix.WAVE')).toBe('audio/wav');
    expect(contentTypeForPath('/in/mix.Mp3')).toBe('audio/mpeg');
    expect(contentTypeForPath('/in/mix.flac')).toBeUndefined();
  });
});

async function inspect(name: string, content: Buffer): Promise<Inspection> {
  const path = join(dir, name);
  await writeFile(path, content);
  return inspectFile(path, content.length);
}

/** A file of `length` bytes whose head is `head` and the rest a hole: gigabytes without writing them. */
async function sparse(name: string, head: Buffer, length: number): Promise<string> {
  const path = join(dir, name);
  const file = await open(path, 'w');
  try {
    await file.write(head, 0, head.length, 0);
    await file.truncate(length);
  } finally {
    await file.close();
  }
  return path;
}

const WAV_OK = { verdict: 'complete', kind: 'wav', contentType: 'audio/wav' };
const MP3_OK = { verdict: 'complete', kind: 'mp3', contentType: 'audio/mpeg' };

describe('kindFromExtension', () => {
  it.each([
    ['/a/mix.wav', 'wav'],
    ['/a/MIX.WAV', 'wav'],
    ['/a/mix.Wave', 'wav'],
    ['/a/mix.mp3', 'mp3'],
    ['/a/mix.MP3', 'mp3'],
    ['/a/mix.flac', null],
    ['/a/mix.wav.part', null],
    ['/a/mix', null],
    ['/a/.wav', null],
    ['/a/x.constructor', null],
  ])('%s → %s', (path, kind) => {
    expect(kindFromExtension(path)).toBe(kind);
  });
});

describe('inspectFile: WAV', () => {
  it('accepts a finished canonical WAV', async () => {
    const file = wav([fmtChunk(), chunk('data', Buffer.alloc(4000, 7))]);
    expect(await inspect('mix.wav', file)).toEqual(WAV_OK);
  });

  it('walks bext/LIST chunks before data and tolerates chunks after it', async () => {
    const file = wav([
      chunk('bext', Buffer.alloc(602)),
      fmtChunk(),
      chunk('LIST', Buffer.alloc(33)),
      chunk('data', Buffer.alloc(1000)),
      chunk('iXML', Buffer.alloc(120)),
    ]);
    expect(await inspect('mix.WAVE', file)).toEqual(WAV_OK);
  });

  it('accepts an odd data chunk whether or not the RIFF size counts its pad byte', async () => {
    const padded = wav([fmtChunk(), chunk('data', Buffer.alloc(1001))]);
    expect(await inspect('counted.wav', padded)).toEqual(WAV_OK);
    const uncounted = wav([fmtChunk(), chunk('data', Buffer.alloc(1001))], { riffSize: padded.length - 9 });
    expect(await inspect('uncounted.wav', uncounted)).toEqual(WAV_OK);
  });

  it('reports a DAW placeholder header (sizes 0) as incomplete, with the numbers', async () => {
    const file = wav([fmtChunk(), chunk('data', Buffer.alloc(3 * 1024 * 1024), 0)], { riffSize: 0 });
    expect(await inspect('mix.wav', file)).toEqual({
      verdict: 'incomplete',
      reason: 'WAV header says 44 + 0 data bytes but the file has 3,145,772 bytes (the DAW has not finished writing it)',
    });
  });

  it('reports 0xFFFFFFFF placeholder sizes as incomplete', async () => {
    const file = wav([fmtChunk(), chunk('data', Buffer.alloc(5000), 0xffff_ffff)], { riffSize: 0xffff_ffff });
    const result = await inspect('mix.wav', file);
    expect(result).toMatchObject({ verdict: 'incomplete' });
    expect(result).toHaveProperty('reason', expect.stringContaining('44 + 4,294,967,295 data bytes but the file has 5,044 bytes'));
  });

  it('reports a data chunk that runs past the end of the file as incomplete', async () => {
    const full = wav([fmtChunk(), chunk('data', Buffer.alloc(8000))]);
    const truncated = full.subarray(0, 3000);
    expect(await inspect('mix.wav', truncated)).toEqual({
      verdict: 'incomplete',
      reason: 'WAV header says 44 + 8,000 data bytes but the file has 3,000 bytes (the DAW has not finished writing it)',
    });
  });

  it('reports a RIFF size that disagrees with the file length as incomplete', async () => {
    const file = wav([fmtChunk(), chunk('data', Buffer.alloc(1000)), chunk('LIST', Buffer.alloc(100))], { riffSize: 1040 });
    expect(await inspect('mix.wav', file)).toEqual({
      verdict: 'incomplete',
      reason: 'WAV header says the file is 1,048 bytes but it has 1,152 bytes (the DAW has not finished writing it)',
    });
  });

  it('reports a file too short for a header, or without a data chunk yet, as incomplete', async () => {
    expect(await inspect('empty.wav', Buffer.alloc(0))).toMatchObject({ verdict: 'incomplete', reason: expect.stringContaining('0 bytes, too few for a WAV header') });
    expect(await inspect('head.wav', wav([]).subarray(0, 8))).toMatchObject({ verdict: 'incomplete' });
    const headerOnly = wav([fmtChunk()], { riffSize: 0 });
    expect(await inspect('fmt.wav', headerOnly)).toMatchObject({ verdict: 'incomplete', reason: expect.stringContaining('no data chunk yet') });
  });

  it('rejects a finished RIFF/WAVE without a data chunk', async () => {
    expect(await inspect('mix.wav', wav([fmtChunk(), chunk('LIST', Buffer.alloc(10))]))).toEqual({
      verdict: 'invalid',
      reason: 'the WAV file has no data chunk',
    });
  });

  it('takes 64-bit sizes from ds64 for RF64 and BW64', async () => {
    const body = [fmtChunk(), chunk('data', Buffer.alloc(2000), 0xffff_ffff)];
    const riffSize = BigInt(4 + 36 + 24 + 8 + 2000);
    const rf64 = wav([ds64Chunk(riffSize, 2000n), ...body], { form: 'RF64', riffSize: 0xffff_ffff });
    expect(rf64.length).toBe(Number(riffSize) + 8);
    expect(await inspect('rf64.wav', rf64)).toEqual(WAV_OK);
    const bw64 = wav([ds64Chunk(riffSize, 2000n), ...body], { form: 'BW64', riffSize: 0xffff_ffff });
    expect(await inspect('bw64.wav', bw64)).toEqual(WAV_OK);
  });

  it('reports RF64 without sizes (no ds64, or ds64 still zero) as incomplete', async () => {
    const noDs64 = wav([fmtChunk(), chunk('data', Buffer.alloc(2000), 0xffff_ffff)], { form: 'RF64', riffSize: 0xffff_ffff });
    expect(await inspect('a.wav', noDs64)).toEqual({
      verdict: 'incomplete',
      reason: 'the RF64 header has no sizes yet (no ds64 chunk) and the file has 2,044 bytes (the DAW has not finished writing it)',
    });
    const zeroDs64 = wav([ds64Chunk(0n, 0n), fmtChunk(), chunk('data', Buffer.alloc(2000), 0xffff_ffff)], {
      form: 'RF64',
      riffSize: 0xffff_ffff,
    });
    expect(await inspect('b.wav', zeroDs64)).toMatchObject({ verdict: 'incomplete', reason: expect.stringContaining('80 + 0 data bytes') });
  });

  it('inspects multi-gigabyte files from their headers alone', async () => {
    const big = 1.5 * 1024 ** 3;
    const riffHead = wav([fmtChunk(), chunk('data', Buffer.alloc(0), big - 44)], { riffSize: big - 8 });
    expect(await inspectFile(await sparse('big.wav', riffHead, big), big)).toEqual(WAV_OK);

    const huge = 5 * 1024 ** 3;
    const dataStart = 12 + 36 + 24 + 8;
    const rf64Head = wav([ds64Chunk(BigInt(huge - 8), BigInt(huge - dataStart)), fmtChunk(), chunk('data', Buffer.alloc(0), 0xffff_ffff)], {
      form: 'RF64',
      riffSize: 0xffff_ffff,
    });
    const path = await sparse('huge.wav', rf64Head, huge);
    expect((await stat(path)).size).toBe(huge);
    expect(await inspectFile(path, huge)).toEqual(WAV_OK);
  });

  it('rejects a .wav whose content is MP3, FLAC or unknown, naming what it is', async () => {
    expect(await inspect('a.wav', Buffer.concat([id3Tag(100), mp3Frames(3)]))).toEqual({
      verdict: 'invalid',
      reason: 'the file is named .wav but its content is MP3, not RIFF/WAVE',
    });
    expect(await inspect('b.wav', mp3Frames(3))).toMatchObject({ reason: expect.stringContaining('content is MP3') });
    expect(await inspect('c.wave', Buffer.concat([Buffer.from('fLaC'), Buffer.alloc(100)]))).toEqual({
      verdict: 'invalid',
      reason: 'the file is named .wave but its content is FLAC, not RIFF/WAVE',
    });
    expect(await inspect('d.WAV', Buffer.from('hello world, not audio at all'))).toEqual({
      verdict: 'invalid',
      reason: 'the file is named .WAV but its content is unknown (it starts with 68 65 6c 6c 6f 20 77 6f), not RIFF/WAVE',
    });
  });
});

describe('inspectFile: MP3', () => {
  it('accepts an ID3v2 tag followed by a frame, and a bare frame', async () => {
    expect(await inspect('tagged.mp3', Buffer.concat([id3Tag(2000), mp3Frames(5)]))).toEqual(MP3_OK);
    expect(await inspect('bare.MP3', mp3Frames(5))).toEqual(MP3_OK);
  });

  it('skips the ID3 footer when the tag declares one', async () => {
    expect(await inspect('footer.mp3', Buffer.concat([id3Tag(300, { footer: true }), mp3Frames(5)]))).toEqual(MP3_OK);
  });

  it('finds the first frame after encoder padding, but not far beyond it', async () => {
    expect(await inspect('padded.mp3', Buffer.concat([id3Tag(500), Buffer.alloc(1500), mp3Frames(20)]))).toEqual(MP3_OK);
    expect(await inspect('far.mp3', Buffer.concat([id3Tag(500), Buffer.alloc(5000), mp3Frames(20)]))).toEqual({
      verdict: 'invalid',
      reason: 'the file is named .mp3 and has an ID3 tag but no MPEG frame sync within 4,096 bytes after it',
    });
  });

  it('reports a tag that runs past the end of the file as incomplete', async () => {
    const tag = id3Tag(10_000).subarray(0, 4000);
    expect(await inspect('partial.mp3', tag)).toEqual({
      verdict: 'incomplete',
      reason: 'the ID3 tag says 10,010 bytes but the file has 4,000 bytes (the encoder has not finished writing it)',
    });
  });

  it('rejects RIFF/WAVE content named .mp3', async () => {
    expect(await inspect('mix.mp3', wav([fmtChunk(), chunk('data', Buffer.alloc(100))]))).toEqual({
      verdict: 'invalid',
      reason: 'the file is named .mp3 but its content is WAV (RIFF/WAVE), not MP3',
    });
  });

  it('rejects content with neither ID3 nor a valid frame header', async () => {
    expect(await inspect('ogg.mp3', Buffer.concat([Buffer.from('OggS'), Buffer.alloc(100)]))).toEqual({
      verdict: 'invalid',
      reason: 'the file is named .mp3 but has no ID3 tag or MPEG frame sync (its content is Ogg)',
    });
    // AAC in ADTS has the sync bits but layer 00, which MPEG audio reserves.
    const adts = Buffer.concat([Buffer.from([0xff, 0xf1, 0x50, 0x80]), Buffer.alloc(100)]);
    expect(await inspect('aac.mp3', adts)).toMatchObject({ verdict: 'invalid', reason: expect.stringContaining('no ID3 tag or MPEG frame sync') });
    const badBitrate = Buffer.concat([Buffer.from([0xff, 0xfb, 0xf0, 0x64]), Buffer.alloc(100)]);
    expect(await inspect('bad.mp3', badBitrate)).toMatchObject({ verdict: 'invalid' });
  });
});

describe('inspectFile: file-system errors', () => {
  it('throws ENOENT rather than returning a verdict', async () => {
    await expect(inspectFile(join(dir, 'missing.wav'), 100)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.skipIf(process.getuid?.() === 0)('throws EACCES rather than returning a verdict (skipped when run as root, who can read any file)', async () => {
    const path = join(dir, 'locked.wav');
    await writeFile(path, wav([fmtChunk(), chunk('data', Buffer.alloc(100))]));
    await chmod(path, 0o000);
    await expect(inspectFile(path, 144)).rejects.toMatchObject({ code: 'EACCES' });
  });
});
