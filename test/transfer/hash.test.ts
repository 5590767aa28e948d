import { createHash, randomBytes } from 'node:crypto';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEAD_BYTES, readHead, sha256File } from '../../src/transfer/hash.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-hash-');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function fileOf(data: Buffer, name = 'mix.wav'): string {
  const path = join(tempDir(), name);
  writeFileSync(path, data);
  return path;
}

describe('sha256File', () => {
  it.each([
    ['empty', 0],
    ['shorter than one read', 1000],
    ['several reads, ending mid-buffer', 3 * 256 * 1024 + 12_345],
    ['an exact number of reads', 4 * 256 * 1024],
  ])('hashes a file %s whole and in order', async (_name, size) => {
    const data = randomBytes(size);
    expect(await sha256File(fileOf(data))).toBe(sha256(data));
  });

  it('stops when the upload is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    await expect(sha256File(fileOf(randomBytes(1_000_000)), controller.signal)).rejects.toThrow('shutting down');
  });

  it('never reads through a symlink', async () => {
    const target = fileOf(randomBytes(1000));
    const link = join(tempDir(), 'link.wav');
    symlinkSync(target, link);
    await expect(sha256File(link)).rejects.toMatchObject({ code: 'ELOOP' });
  });
});

describe('readHead', () => {
  it('reads the first HEAD_BYTES of a longer file, and all of a shorter one', async () => {
    const data = randomBytes(HEAD_BYTES * 3);
    expect(await readHead(fileOf(data))).toEqual(data.subarray(0, HEAD_BYTES));
    expect(await readHead(fileOf(data.subarray(0, 100), 'short.wav'))).toEqual(data.subarray(0, 100));
  });
});
