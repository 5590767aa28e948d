import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { ApiAnswer } from '../cryomix/client.js';
import { keyAccepted } from '../cryomix/keyProbe.js';
import { openDatabase } from '../store/db.js';
import { mastersDirectory, type Config, type FolderConfig } from '../config/index.js';
import { FolderGate, FolderNotAnsweringError, type FileOperations } from '../files/folderGate.js';
import { ConfigError } from '../errors.js';
import { clockLine, clockSkew } from '../ops/clock.js';
import { inotifyInstances, inotifyWatches } from '../ops/inotify.js';
import { databaseFileSystem, folderFileSystem, freeSpace, type CheckLine } from '../ops/preflight.js';
import { apiTarget, type ApiTarget } from './api.js';
import { configFrom, type GlobalOptions } from './context.js';
import { EXIT_FAILURE, EXIT_OK } from './exitCodes.js';
import { exitPastStuckCalls } from './stuckExit.js';

/** How long `check` waits for a folder to answer (less when the folder's own answerTimeoutSeconds is). */
const CHECK_ANSWER_SECONDS = 10;

/**
 * Preflight. Every line says what was checked and, when it is not PASS, what
 * to do. A bad config never gets here: loading it fails first, with exit 78.
 */
export async function checkCommand(options: GlobalOptions & { json?: boolean; sandbox?: boolean }): Promise<number> {
  const config = configFrom(options);
  const lines: CheckLine[] = [{ verdict: 'PASS', check: 'config', detail: options.config ?? 'loaded' }];
  lines.push(databaseWritable(config.state.database), databaseFileSystem(config.state.database));
  const gates = new Map<FolderConfig, FolderGate>();
  const answering: FolderConfig[] = [];
  for (const folder of config.folders) {
    // A hung share must not hang the check: its first look is timed, and a folder that does not answer gets no further look.
    const gate = new FolderGate({ folder: folder.path, maxInFlight: 1, timeoutMs: Math.min(folder.answerTimeoutSeconds, CHECK_ANSWER_SECONDS) * 1000, onChange: () => undefined });
    gates.set(folder, gate);
    lines.push(await folderReadable(folder.path, folder.afterUpload !== 'keep', (operation) => gate.run(operation)));
    if (gate.notAnsweringSince !== undefined) continue;
    answering.push(folder);
    lines.push(folderFileSystem(folder));
    if (folder.mastering) lines.push(freeSpace(mastersDirectory(folder)));
  }
  const looked = { ...config, folders: answering };
  lines.push(await inotifyWatches(looked, { runFor: (folder) => (operation) => gates.get(folder)!.run(operation) }), inotifyInstances(looked));
  lines.push(...(await apiLines(config, Boolean(options.sandbox))));
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ok: lines.every((l) => l.verdict !== 'FAIL'), checks: lines }, null, 2)}\n`);
  } else {
    for (const line of lines) process.stdout.write(`${line.verdict}  ${line.check}: ${line.detail}\n`);
  }
  const code = lines.some((line) => line.verdict === 'FAIL') ? EXIT_FAILURE : EXIT_OK;
  const callsMayBeStuck = [...gates.values()].some((gate) => gate.inKernel > 0);
  return exitPastStuckCalls(code, callsMayBeStuck, (line) => process.stderr.write(`cryomix-watch check: ${line}\n`));
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

async function folderReadable(path: string, needsWrite: boolean, run: FileOperations): Promise<CheckLine> {
  const check = `folder ${path}`;
  try {
    if (!(await run(() => stat(path))).isDirectory()) return { verdict: 'FAIL', check, detail: 'is not a directory; fix folders[].path' };
    await run(() => access(path, constants.R_OK | constants.X_OK | (needsWrite ? constants.W_OK : 0)));
    return { verdict: 'PASS', check, detail: needsWrite ? 'readable and writable' : 'readable' };
  } catch (error) {
    if (error instanceof FolderNotAnsweringError) {
      return { verdict: 'FAIL', check, detail: `does not answer (a hung network share?): ${error.reason}; check the NAS and the network. The daemon carries on with its other folders meanwhile` };
    }
    const code = (error as NodeJS.ErrnoException).code;
    const fix =
      code === 'ENOENT'
        ? 'does not exist; create it or mount the share'
        : `not ${needsWrite ? 'readable and writable (afterUpload moves or deletes files)' : 'readable'} by this user; fix its permissions`;
    return { verdict: 'FAIL', check, detail: fix };
  }
}

/**
 * One call answers three questions: the key is accepted (any answer but 401),
 * the Origin with it (a key bound to domains answers 401 to any other), and
 * how far our clock is from the API's (its Date header).
 */
async function apiLines(config: Config, useSandbox: boolean): Promise<CheckLine[]> {
  const check = 'API key';
  const origin = config.api.origin;
  let answer: { date: Date; receivedAt: number } | undefined;
  const onAnswer = ({ date }: ApiAnswer) => {
    if (date) answer = { date, receivedAt: Date.now() };
  };
  let target: ApiTarget;
  try {
    target = await apiTarget(config, useSandbox, onAnswer);
  } catch (error) {
    // No key, or a key file others can read: a finding of the check, not a reason to stop it.
    if (error instanceof ConfigError) return [{ verdict: 'FAIL', check, detail: error.message }];
    throw error;
  }
  const who = target.sandbox ? 'the embedded sandbox' : 'the Cryo-mix API';
  const sentAt = Date.now();
  let key: CheckLine;
  try {
    if (await keyAccepted(target.api)) {
      key = { verdict: 'PASS', check, detail: `accepted by ${who}${origin ? `, sent with Origin ${origin}, so that origin is allowed too` : ''}` };
    } else {
      key = { verdict: 'FAIL', check, detail: rejectedKeyFix(origin) };
    }
  } catch (error) {
    key = { verdict: 'FAIL', check, detail: `could not reach the API: ${(error as Error).message}` };
  } finally {
    await target.close();
  }
  const clock: CheckLine = answer
    ? clockLine(clockSkew({ sentAt, receivedAt: answer.receivedAt }, answer.date), `${who}'s clock`)
    : { verdict: 'WARN', check: 'clock', detail: `not checked: no answer with a Date header from ${who}; make sure time synchronisation is on (timedatectl)` };
  return [key, clock];
}

/** A 401 says the key is wrong or, when one is sent, that the Origin is not on the key's allow list: name both. */
function rejectedKeyFix(origin: string | undefined): string {
  const key = 'set the right key in CRYOMIX_API_KEY, the cryomix-api-key systemd credential, or api.keyFile';
  if (origin === undefined) return `rejected (401): ${key}; if the key is bound to domains, set api.origin to one of them`;
  return `rejected (401) with Origin ${origin}: either the key is wrong (${key}) or ${origin} is not among the domains the key is bound to (add it to the key's allowed domains in your Cryo-mix account, or set api.origin to one that is)`;
}
