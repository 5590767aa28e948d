import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Config, loadApiKey, parseConfig } from '../../src/config/index.js';
import { configErrorOf } from './configError.js';
import { useTestDir } from '../helpers/tempDir.js';

const SECRET = 'ck_live_0123456789abcdef';

describe('loadApiKey', () => {
  const tempDir = useTestDir('cryomix-config-');

  function keyFile(content: string, mode: number): string {
    const file = path.join(tempDir(), 'api-key');
    writeFileSync(file, content);
    chmodSync(file, mode);
    return file;
  }

  function configWithKeyFile(file?: string): Config {
    const api = file === undefined ? '' : `api: { keyFile: ${file} }\n`;
    return parseConfig(`${api}folders: [{ path: /srv/a }]\n`, tempDir());
  }

  function credentialsDirectory(content: string): string {
    const dir = path.join(tempDir(), 'credentials');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'cryomix-api-key'), `${content}\n`);
    return dir;
  }

  it('prefers $CRYOMIX_API_KEY, trimmed', () => {
    const config = configWithKeyFile(keyFile('from-file', 0o600));
    const env = { CRYOMIX_API_KEY: ` ${SECRET}\n`, CREDENTIALS_DIRECTORY: credentialsDirectory('from-systemd') };
    expect(loadApiKey(config, env)).toBe(SECRET);
  });

  it('skips a blank $CRYOMIX_API_KEY', () => {
    const config = configWithKeyFile(keyFile(`${SECRET}\n`, 0o600));
    expect(loadApiKey(config, { CRYOMIX_API_KEY: '  ' })).toBe(SECRET);
  });

  it('then reads the systemd credential', () => {
    const config = configWithKeyFile(keyFile('from-file', 0o600));
    expect(loadApiKey(config, { CREDENTIALS_DIRECTORY: credentialsDirectory(SECRET) })).toBe(SECRET);
  });

  it('falls through to api.keyFile when the credential directory lacks the key', () => {
    const config = configWithKeyFile(keyFile(`${SECRET}\n`, 0o600));
    expect(loadApiKey(config, { CREDENTIALS_DIRECTORY: tempDir() })).toBe(SECRET);
  });

  it('reads api.keyFile relative to the config, trailing newline trimmed', () => {
    keyFile(`${SECRET}\n`, 0o600);
    expect(loadApiKey(configWithKeyFile('api-key'), {})).toBe(SECRET);
  });

  it('refuses a group-readable key file and names the fix', () => {
    const file = keyFile(`${SECRET}\n`, 0o640);
    const error = configErrorOf(() => loadApiKey(configWithKeyFile(file), {}));
    expect(error).toBe(`config: api.keyFile: ${file} is accessible by group or others (mode 0640): run chmod 600 ${file}`);
    expect(error).not.toContain(SECRET);
  });

  it('names the missing key file', () => {
    const file = path.join(tempDir(), 'nope');
    expect(configErrorOf(() => loadApiKey(configWithKeyFile(file), {}))).toBe(
      `config: api.keyFile: cannot read ${file}: no such file`,
    );
  });

  it('refuses a file that holds more than the key, without quoting it', () => {
    const file = keyFile(`${SECRET}\nsecond line\n`, 0o600);
    const error = configErrorOf(() => loadApiKey(configWithKeyFile(file), {}));
    expect(error).toBe(`config: api.keyFile: ${file} must hold the API key alone, on one line`);
    expect(error).not.toContain(SECRET);
  });

  it('explains the three sources when none has a key', () => {
    expect(configErrorOf(() => loadApiKey(configWithKeyFile(), {}))).toBe(
      'config: no API key: set CRYOMIX_API_KEY, or load it as the systemd credential cryomix-api-key (LoadCredential=), ' +
        'or set api.keyFile to a file only the service user can read (chmod 600)',
    );
  });
});
