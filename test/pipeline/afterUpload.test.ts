import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyAfterUpload, NotTheUploadedVersionError } from '../../src/pipeline/afterUpload.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir();

function uploadedFile(dir: string, name = 'mix.wav', content = 'uploaded bytes') {
  const path = join(dir, name);
  writeFileSync(path, content);
  const { size, mtimeMs } = statSync(path);
  return { path, version: { size, mtimeMs } };
}

describe('applyAfterUpload', () => {
  it('deletes the uploaded version', async () => {
    const { path, version } = uploadedFile(tempDir());
    expect(await applyAfterUpload(path, { action: 'delete' }, version)).toBeNull();
    expect(existsSync(path)).toBe(false);
  });

  it('never deletes or moves a file that changed since its upload (a re-export)', async () => {
    const dir = tempDir();
    const { path, version } = uploadedFile(dir);
    writeFileSync(path, 'the new export, never uploaded');
    await expect(applyAfterUpload(path, { action: 'delete' }, version)).rejects.toThrow(NotTheUploadedVersionError);
    await expect(applyAfterUpload(path, { action: 'move', folder: dir, moveTo: join(dir, 'done') }, version)).rejects.toThrow(NotTheUploadedVersionError);
    expect(readFileSync(path, 'utf8')).toBe('the new export, never uploaded');
    expect(existsSync(join(dir, 'done'))).toBe(false);
  });

  it('moves keeping the sub-folder and adds (2), (3) instead of overwriting', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'in', 'album'), { recursive: true });
    mkdirSync(join(dir, 'out', 'album'), { recursive: true });
    writeFileSync(join(dir, 'out', 'album', 'mix.wav'), 'older 1');
    writeFileSync(join(dir, 'out', 'album', 'mix (2).wav'), 'older 2');
    const { path, version } = uploadedFile(join(dir, 'in', 'album'));
    const moved = await applyAfterUpload(path, { action: 'move', folder: join(dir, 'in'), moveTo: join(dir, 'out') }, version);
    expect(moved).toBe(join(dir, 'out', 'album', 'mix (3).wav'));
    expect(readFileSync(moved!, 'utf8')).toBe('uploaded bytes');
    expect(readFileSync(join(dir, 'out', 'album', 'mix.wav'), 'utf8')).toBe('older 1');
    expect(existsSync(path)).toBe(false);
  });

  it('treats an already vanished file as nothing to do', async () => {
    const dir = tempDir();
    expect(await applyAfterUpload(join(dir, 'gone.wav'), { action: 'delete' }, { size: 1, mtimeMs: 1 })).toBeNull();
  });
});
