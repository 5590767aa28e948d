import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { readProblem } from './readProblem.js';
import type { Config } from './schema.js';

/** The name to give `LoadCredential=` in the systemd unit. */
export const CREDENTIAL_NAME = 'cryomix-api-key';

/**
 * The API key, from the first source that has one: `$CRYOMIX_API_KEY`, the
 * systemd credential, then `api.keyFile`. Messages name where the key came
 * from and never contain it.
 */
export function loadApiKey(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.CRYOMIX_API_KEY?.trim();
  if (fromEnv) return checkKey(fromEnv, '', '$CRYOMIX_API_KEY');
  if (env.CREDENTIALS_DIRECTORY) {
    const credential = path.join(env.CREDENTIALS_DIRECTORY, CREDENTIAL_NAME);
    // systemd has already made the credential private to this service.
    if (existsSync(credential)) return readKeyFile(credential, '', false);
  }
  if (config.api.keyFile !== undefined) return readKeyFile(config.api.keyFile, 'api.keyFile', true);
  throw new ConfigError(
    '',
    `no API key: set CRYOMIX_API_KEY, or load it as the systemd credential ${CREDENTIAL_NAME} (LoadCredential=), ` +
      'or set api.keyFile to a file only the service user can read (chmod 600)',
  );
}

function readKeyFile(file: string, keyPath: string, mustBePrivate: boolean): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw new ConfigError(keyPath, `cannot read ${file}: ${readProblem(error)}`);
  }
  try {
    // fstat on the open descriptor: the mode checked is the mode of the bytes read.
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError(keyPath, `${file} is not a regular file`);
    if (mustBePrivate && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new ConfigError(keyPath, `${file} is accessible by group or others (mode ${mode}): run chmod 600 ${file}`);
    }
    return checkKey(readFileSync(fd, 'utf8').trim(), keyPath, file);
  } finally {
    closeSync(fd);
  }
}

/** A key with inner whitespace is a wrong file, and would be refused as a header value. */
function checkKey(key: string, keyPath: string, source: string): string {
  if (key === '') throw new ConfigError(keyPath, `${source} is empty`);
  if (/[\s\u0000-\u001f\u007f]/.test(key)) {
    throw new ConfigError(keyPath, `${source} must hold the API key alone, on one line`);
  }
  return key;
}
