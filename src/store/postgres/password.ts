import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pgpass from 'pgpass';
import { errnoCode } from '../../files/errno.js';

/** The name of the credential a systemd unit passes with LoadCredential= (read from $CREDENTIALS_DIRECTORY). */
export const PASSWORD_CREDENTIAL = 'cryomix-postgres-password';

/**
 * The role's password, from the first place that has one: the systemd
 * credential, PGPASSWORD, then a pgpass file (PGPASSFILE or ~/.pgpass, the
 * lines libpq reads). Never from the config file, which more people may
 * read. Undefined when none has one: the server may not ask (trust, peer).
 */
export async function postgresPassword(url: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const fromCredential = await credential(env.CREDENTIALS_DIRECTORY);
  if (fromCredential !== undefined) return fromCredential;
  if (env.PGPASSWORD) return env.PGPASSWORD;
  const target = new URL(url);
  return new Promise((resolve) => {
    pgpass(
      {
        host: target.hostname,
        port: Number(target.port || 5432),
        database: decodeURIComponent(target.pathname.slice(1)),
        user: decodeURIComponent(target.username),
      },
      resolve,
    );
  });
}

async function credential(directory: string | undefined): Promise<string | undefined> {
  if (!directory) return undefined;
  try {
    // A file written with `echo` ends in a newline that is no part of the password.
    return (await readFile(join(directory, PASSWORD_CREDENTIAL), 'utf8')).replace(/\r?\n$/, '');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}
