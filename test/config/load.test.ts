import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfigPath, loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { configErrorOf } from './configError.js';
import { useTestDir } from '../helpers/tempDir.js';

describe('loadConfig', () => {
  const tempDir = useTestDir('cryomix-config-');

  function write(text: string): string {
    const file = path.join(tempDir(), 'config.yaml');
    writeFileSync(file, text);
    return file;
  }

  it('reads a file', () => {
    const file = write('folders:\n  - path: inbox\n');
    expect(loadConfig(file).folders[0]?.path).toBe(path.join(tempDir(), 'inbox'));
  });

  it('names the file and line of a YAML syntax error', () => {
    const file = write('folders:\n  - path: /srv/a\n    recursive: yes: no\nlog: { level: info }\n');
    expect(configErrorOf(() => loadConfig(file))).toBe(
      `config: ${file} line 3: Nested mappings are not allowed in compact mappings`,
    );
  });

  it('refuses duplicate keys, which YAML would otherwise resolve silently', () => {
    const file = write('folders:\n  - path: /srv/a\nfolders:\n  - path: /srv/b\n');
    expect(configErrorOf(() => loadConfig(file))).toBe(`config: ${file} line 3: Map keys must be unique`);
  });

  it('refuses an unknown tag rather than reading it as a string', () => {
    const file = write('folders:\n  - path: !env EXPORTS\n');
    expect(configErrorOf(() => loadConfig(file))).toBe(`config: ${file} line 2: Unresolved tag: !env`);
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [index, name] of [...'bcdefgh'].entries()) {
      levels.push(`${name}: &${name} [${Array(9).fill(`*${'abcdefg'[index]}`).join(', ')}]`);
    }
    const file = write(`${levels.join('\n')}\nfolders: [{ path: /srv/a }]\n`);
    expect(configErrorOf(() => loadConfig(file))).toMatch(new RegExp(`^config: ${file}: Excessive alias count`));
  });

  it('says how to point at another file when there is none', () => {
    const error = configErrorOf(() => loadConfig('/nonexistent/cryomix-watch/config.yaml'));
    expect(error).toBe(
      'config: cannot read /nonexistent/cryomix-watch/config.yaml: no such file (pass --config FILE or set CRYOMIX_WATCH_CONFIG)',
    );
  });

  it('reports an empty file as missing folders', () => {
    expect(configErrorOf(() => loadConfig(write('')))).toBe('config: folders: missing, expected a list of folders to watch');
  });

  it('throws ConfigError, which the CLI maps to exit 78', () => {
    expect(() => loadConfig(write('folders: 1\n'))).toThrow(ConfigError);
  });
});

describe('defaultConfigPath', () => {
  it('prefers $CRYOMIX_WATCH_CONFIG', () => {
    expect(defaultConfigPath({ CRYOMIX_WATCH_CONFIG: '/tmp/x.yaml' })).toBe('/tmp/x.yaml');
  });

  it('falls back to /etc', () => {
    expect(defaultConfigPath({})).toBe('/etc/cryomix-watch/config.yaml');
    expect(defaultConfigPath({ CRYOMIX_WATCH_CONFIG: '' })).toBe('/etc/cryomix-watch/config.yaml');
  });
});

describe('the example configs that ship', () => {
  it('the one the container writes on its first start loads as it is: state and folders where the image has its volumes', () => {
    const config = loadConfig(path.join(import.meta.dirname, '..', '..', 'container', 'config.yaml'));
    expect(config.state.database).toBe('/state/state.db');
    expect(config.folders.map((folder) => folder.path)).toEqual(['/watch/exports']);
    expect(config.http?.listen).toEqual({ host: '0.0.0.0', port: 9464 });
  });
});
