import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { keyAccepted } from '../cryomix/keyProbe.js';
import { openDatabase } from '../store/db.js';
import type { Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { databaseFileSystem, folderFileSystem, freeSpace, inotifyWatches, type CheckLine } from '../ops/preflight.js';
import { mastersDirectory } from '../pipeline/master.js';
import { apiTarget, type ApiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';


/**
 * Preflight. Every line says what was checked and, when it is not PASS, what
 * to do. A bad config never gets here: loading it fails first, with exit 78.
 */
export async function checkCommand(options: GlobalOptions & { json?: boolean; sandbox?: boolean }): Promise<number> {
  const config = configFrom(options);
  const lines: CheckLine[] = [{ verdict: 'PASS', check: 'config', detail: options.config ?? 'loaded' }];
  lines.push(databaseWritable(config.state.database), databaseFileSystem(config.state.database));
  for (const folder of config.folders) {
    lines.push(await folderReadable(folder.path, folder.afterUpload !== 'keep'), folderFileSystem(folder));
    if (folder.mastering) lines.push(freeSpace(mastersDirectory(folder)));
  }
  lines.push(await inotifyWatches(config));
  lines.push(await apiKeyLine(config, Boolean(options.sandbox)));
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ok: lines.every((l) => l.verdict !== 'FAIL'), checks: lines }, null, 2)}\n`);
  } else {
    for (const line of lines) process.stdout.write(`${line.verdict}  ${line.check}: ${line.detail}\n`);
  }
  return lines.some((line) => line.verdict === 'FAIL') ? 1 : 0;
}

function databaseWritable(file: string): CheckLine {
  try {
    const db = openDatabase(file);
    try {
      // A write lock proves the file and its directory (for the WAL) are writable, without changing anything.
      db.exec('BEGIN IMMEDIATE; ROLLBACK;');
    } finally {
      db.close();
    }
    return { verdict: 'PASS', check: 'state database', detail: `${file} is writable` };
  } catch (error) {
    return { verdict: 'FAIL', check: 'state database', detail: `${(error as Error).message}` };
  }
}

async function folderReadable(path: string, needsWrite: boolean): Promise<CheckLine> {
  const check = `folder ${path}`;
  try {
    if (!(await stat(path)).isDirectory()) return { verdict: 'FAIL', check, detail: 'is not a directory; fix folders[].path' };
    await access(path, constants.R_OK | constants.X_OK | (needsWrite ? constants.W_OK : 0));
    return { verdict: 'PASS', check, detail: needsWrite ? 'readable and writable' : 'readable' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const fix =
      code === 'ENOENT'
        ? 'does not exist; create it or mount the share'
        : `not ${needsWrite ? 'readable and writable (afterUpload moves or deletes files)' : 'readable'} by this user; fix its permissions`;
    return { verdict: 'FAIL', check, detail: fix };
  }
}

async function apiKeyLine(config: Config, useSandbox: boolean): Promise<CheckLine> {
  const check = 'API key';
  let target: ApiTarget;
  try {
    target = await apiTarget(config, useSandbox);
  } catch (error) {
    // No key, or a key file others can read: a finding of the check, not a reason to stop it.
    if (error instanceof ConfigError) return { verdict: 'FAIL', check, detail: error.message };
    throw error;
  }
  try {
    if (await keyAccepted(target.api)) {
      return { verdict: 'PASS', check, detail: `accepted by ${target.sandbox ? 'the embedded sandbox' : 'the Cryo-mix API'}` };
    }
    return { verdict: 'FAIL', check, detail: 'rejected (401): set the right key in CRYOMIX_API_KEY or api.keyFile, and api.origin if the key is bound to a domain' };
  } catch (error) {
    return { verdict: 'FAIL', check, detail: `could not reach the API: ${(error as Error).message}` };
  } finally {
    await target.close();
  }
}
