import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
    expect(await applyAfterUpload(path, { action: 'delete' }, version)).toEqual({ kind: 'deleted' });
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
    expect(moved).toEqual({ kind: 'moved', to: join(dir, 'out', 'album', 'mix (3).wav') });
    expect(readFileSync(join(dir, 'out', 'album', 'mix (3).wav'), 'utf8')).toBe('uploaded bytes');
    expect(readFileSync(join(dir, 'out', 'album', 'mix.wav'), 'utf8')).toBe('older 1');
    expect(existsSync(path)).toBe(false);
  });

  it('treats an already vanished file as nothing to do', async () => {
    const dir = tempDir();
    expect(await applyAfterUpload(join(dir, 'gone.wav'), { action: 'delete' }, { size: 1, mtimeMs: 1 })).toEqual({ kind: 'gone' });
  });

  it('leaves no copy behind when the original cannot be removed (an immutable folder), however often it is tried', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'in'));
    const { path, version } = uploadedFile(join(dir, 'in'));
    const plan = { action: 'move', folder: join(dir, 'in'), moveTo: join(dir, 'out') } as const;
    execFileSync('chattr', ['+i', join(dir, 'in')]);
    try {
      for (let attempt = 0; attempt < 3; attempt++) await expect(applyAfterUpload(path, plan, version)).rejects.toThrow(/EPERM/);
      expect(readdirSync(join(dir, 'out'))).toEqual([]);
    } finally {
      execFileSync('chattr', ['-i', join(dir, 'in')]);
    }
    expect(await applyAfterUpload(path, plan, version)).toEqual({ kind: 'moved', to: join(dir, 'out', 'mix.wav') });
  });

  it('takes the link a run stopped before removing the original left, instead of adding "mix (2).wav"', async () => {
    const dir = tempDir();
    const { path, version } = uploadedFile(dir);
    mkdirSync(join(dir, 'out'));
    linkSync(path, join(dir, 'out', 'mix.wav'));
    expect(await applyAfterUpload(path, { action: 'move', folder: dir, moveTo: join(dir, 'out') }, version)).toEqual({ kind: 'moved', to: join(dir, 'out', 'mix.wav') });
    expect(readdirSync(join(dir, 'out'))).toEqual(['mix.wav']);
    expect(existsSync(path)).toBe(false);
  });
});
