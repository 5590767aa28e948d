import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/index.js';
import { configErrorOf } from './configError.js';
import { useTestDir } from '../helpers/tempDir.js';

describe('config paths', () => {
  const tempDir = useTestDir('cryomix-config-');

  it('keeps a shared queue\'s URL and shares, and reads its TLS files relative to the config file', () => {
    const config = parseConfig(
      `state:
  postgres:
    url: postgres://cryomix@db.studio.lan:5432/cryomix
    ssl: { ca: tls/ca.pem, rejectUnauthorized: true }
folders:
  - { path: /mnt/nas/exports, share: exports }
`,
      '/etc/cryomix-watch',
    );
    expect(config.state.postgres).toEqual({ url: 'postgres://cryomix@db.studio.lan:5432/cryomix', ssl: { ca: '/etc/cryomix-watch/tls/ca.pem', rejectUnauthorized: true } });
    expect(config.folders[0]?.share).toBe('exports');
  });

  it('resolves relative paths against the config file, not the working directory', () => {
    const dir = path.join(tempDir(), 'etc');
    mkdirSync(dir);
    const file = path.join(dir, 'config.yaml');
    writeFileSync(
      file,
      `api: { keyFile: secrets/key }
state: { database: ../state/state.db }
folders:
  - path: inbox/
    afterUpload: move
    moveTo: done
    mastering: { outputDir: ./masters }
`,
    );
    const config = loadConfig(path.relative(process.cwd(), file));
    expect(config.api.keyFile).toBe(path.join(dir, 'secrets/key'));
    expect(config.state.database).toBe(path.join(tempDir(), 'state/state.db'));
    expect(config.folders[0]).toMatchObject({
      path: path.join(dir, 'inbox'),
      moveTo: path.join(dir, 'done'),
      mastering: { outputDir: path.join(dir, 'masters') },
    });
  });

  it.each([
    ['the same folder twice', ['/srv/a', '/srv/a/'], 'config: folders[1].path: expected a folder not already watched, got /srv/a, the same as folders[0].path (/srv/a)'],
    ['a folder inside another', ['/srv/a', '/srv/a/b'], 'config: folders[1].path: expected a folder outside folders[0].path (/srv/a), got /srv/a/b'],
    ['a folder around another', ['/srv/a/b', '/srv/a'], 'config: folders[1].path: expected a folder not containing folders[0].path (/srv/a/b), got /srv/a'],
  ])('refuses %s', (_, paths, message) => {
    const yaml = `folders:\n${paths.map((p) => `  - path: ${p}\n`).join('')}`;
    expect(configErrorOf(() => parseConfig(yaml, '/'))).toBe(message);
  });

  it('tells siblings with a common prefix apart', () => {
    expect(parseConfig('folders: [{ path: /srv/a }, { path: /srv/ab }]\n', '/').folders).toHaveLength(2);
  });

  it('refuses moveTo equal to the watched folder', () => {
    const yaml = 'folders:\n  - { path: /srv/a, afterUpload: move, moveTo: /srv/a/sub/.. }\n';
    expect(configErrorOf(() => parseConfig(yaml, '/'))).toBe(
      'config: folders[0].moveTo: expected a folder other than folders[0].path, got /srv/a: what is put there would be uploaded again',
    );
  });

  it('refuses moveTo inside another watched folder, where files would be uploaded again', () => {
    const yaml = 'folders:\n  - { path: /srv/a, afterUpload: move, moveTo: /srv/b/done }\n  - { path: /srv/b }\n';
    expect(configErrorOf(() => parseConfig(yaml, '/'))).toBe(
      'config: folders[0].moveTo: expected a folder outside folders[1].path (/srv/b), got /srv/b/done: what is put there would be uploaded again',
    );
  });

  it.each([
    ['the watched folder itself', '/srv/a', 'config: folders[0].mastering.outputDir: expected a folder other than folders[0].path, got /srv/a: what is put there would be uploaded again'],
    ['another watched folder', '/srv/b', 'config: folders[0].mastering.outputDir: expected a folder outside folders[1].path (/srv/b), got /srv/b: what is put there would be uploaded again'],
    ['a folder inside another watched one', '/srv/b/masters', 'config: folders[0].mastering.outputDir: expected a folder outside folders[1].path (/srv/b), got /srv/b/masters: what is put there would be uploaded again'],
  ])('refuses a masters outputDir in %s, where masters would be uploaded again', (_, outputDir, message) => {
    const yaml = `folders:\n  - { path: /srv/a, mastering: { outputDir: ${outputDir} } }\n  - { path: /srv/b }\n`;
    expect(configErrorOf(() => parseConfig(yaml, '/'))).toBe(message);
  });

  it.each([
    ['moveTo', 'folders:\n  - { path: /srv/in/a, afterUpload: move, moveTo: /srv/in }\n  - { path: /srv/in/b }\n', 'folders[0].moveTo', 'folders[0].path (/srv/in/a)', '/srv/in'],
    ['a masters outputDir', 'folders:\n  - { path: /srv/a, mastering: { outputDir: /srv } }\n', 'folders[0].mastering.outputDir', 'folders[0].path (/srv/a)', '/srv'],
  ])('refuses %s that contains a watched folder, where moved files or masters could land in it', (_, yaml, key, watched, output) => {
    expect(configErrorOf(() => parseConfig(yaml, '/'))).toBe(
      `config: ${key}: expected a folder that does not contain ${watched}, got ${output}: what is put there would be uploaded again once it lands in that folder`,
    );
  });

  it('accepts a masters outputDir inside its own folder, which that folder then skips', () => {
    const yaml = 'folders:\n  - { path: /srv/a, mastering: { outputDir: /srv/a/out } }\n';
    expect(parseConfig(yaml, '/').folders[0]!.mastering?.outputDir).toBe('/srv/a/out');
  });
});
