import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Sandbox } from '../../src/sandbox/index.js';
import type { JobRow } from '../../src/store/jobs.js';
import type { Workspace } from '../helpers/daemon.js';

/** `npm run test:chaos` sets CHAOS_FULL=1 for the full scenarios; `npm test` runs a short version of each. */
export const FULL = process.env.CHAOS_FULL === '1';

export function scaled<T>(short: T, full: T): T {
  return FULL ? full : short;
}

/** Every chaos scenario runs with this key (scenario 9): it must appear in no log, output or DB column. */
export const CANARY_KEY = 'ck_live_CHAOS_CANARY_5e1f0d2b9a';

/** Where each scenario appends its figures; test/chaos/summary.ts prints them as one table at the end. */
export const RESULTS_FILE = join(import.meta.dirname, '..', '..', 'chaos-results', 'latest.jsonl');

export interface Figures {
  scenario: string;
  rounds: number;
  files: number;
  lost: number;
  duplicated: number;
  corrupted: number;
  /** Scenario-specific measurements (max Session-Ids per file, peak RSS, premature uploads…). */
  extra?: Record<string, number | string>;
  /** The scenario's verdict on its own checks beyond lost/duplicated/corrupted (premature uploads, exit codes…). */
  checksPassed: boolean;
}

export function report(figures: Figures): void {
  const pass = figures.checksPassed && figures.lost === 0 && figures.duplicated === 0 && figures.corrupted === 0;
  const line = { ...figures, result: pass ? 'PASS' : 'FAIL', full: FULL };
  console.log(`chaos ${figures.scenario}: ${JSON.stringify(line)}`);
  if (existsSync(join(RESULTS_FILE, '..'))) appendFileSync(RESULTS_FILE, `${JSON.stringify(line)}\n`);
}

export interface Expected {
  path: string;
  sha256: string;
}

export interface Audit {
  /** Expected file versions with no stored object carrying their bytes. */
  lost: number;
  /** File versions stored under more than one object (distinct folder/name), or more than one Session-Id. */
  duplicated: number;
  /** Stored objects attributed to a file whose bytes match no version of it we expected. */
  corrupted: number;
  /** The most Session-Ids any one file version used in API calls (must be 1). */
  maxSessionIdsPerVersion: number;
  /** Live rows not in a final state. */
  unfinished: string[];
  integrity: string;
}

export type { JobRow };

/**
 * Every jobs row, read straight from SQLite: `list` runs a child process
 * synchronously, which would block this process and with it the in-process
 * sandbox. Empty while the database does not exist yet.
 */
export function readJobRows(workspace: Workspace): JobRow[] {
  if (!existsSync(workspace.database)) return [];
  const db = new Database(workspace.database, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM jobs ORDER BY id').all() as JobRow[];
  } finally {
    db.close();
  }
}

/**
 * Compares what storage received with what was on disk. A file counts as
 * stored when an object with its bytes exists under one of its rows'
 * Session-Ids, or when its row is a dedupe of such a file.
 */
export function audit(workspace: Workspace, sandbox: Sandbox, expected: readonly Expected[]): Audit {
  const db = new Database(workspace.database, { readonly: true });
  try {
    const rows = db.prepare('SELECT * FROM jobs').all() as JobRow[];
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    const objects = sandbox.objects();
    const requests = sandbox.requests().filter((r) => r.endpoint === 'multi-upload');
    const rowBySession = new Map(rows.map((row) => [row.session_id, row]));
    const rowById = new Map(rows.map((row) => [row.id, row]));

    let lost = 0;
    let duplicated = 0;
    let corrupted = 0;
    for (const file of expected) {
      const rowsOfFile = rows.filter((row) => row.path === file.path);
      const sessions = new Set(rowsOfFile.map((row) => row.session_id));
      const stored = objects.filter((object) => sessions.has(object.sessionId));
      const storedRight = stored.filter((object) => object.sha256 === file.sha256);
      const dedupedTo = rowsOfFile
        .filter((row) => row.duplicate_of !== null && row.sha256 === file.sha256)
        .map((row) => rowById.get(row.duplicate_of!))
        .filter((original) => original && objects.some((o) => o.sessionId === original.session_id && o.sha256 === file.sha256));
      if (storedRight.length === 0 && dedupedTo.length === 0) lost++;
      const keys = new Set(storedRight.map((object) => `${object.uploadFolderName}/${object.objectName}`));
      const sessionsStoringIt = new Set(storedRight.map((object) => object.sessionId));
      if (keys.size > 1 || sessionsStoringIt.size > 1) duplicated++;
      // Bytes under this file's sessions that are not the file's final bytes must belong to an older version we replaced.
      const knownShas = new Set(rowsOfFile.map((row) => row.sha256).filter(Boolean));
      corrupted += stored.filter((object) => object.sha256 !== file.sha256 && !knownShas.has(object.sha256)).length;
    }

    const sessionsPerVersion = new Map<string, Set<string>>();
    for (const request of requests) {
      const row = request.sessionId ? rowBySession.get(request.sessionId) : undefined;
      if (!row) continue;
      const version = `${row.path}\u0000${row.size}\u0000${row.mtime_ms}`;
      sessionsPerVersion.set(version, (sessionsPerVersion.get(version) ?? new Set()).add(row.session_id));
    }
    const maxSessionIdsPerVersion = Math.max(0, ...[...sessionsPerVersion.values()].map((ids) => ids.size));
    const unfinished = rows.filter((row) => row.current === 1 && !['done', 'failed', 'rejected', 'removed'].includes(row.state)).map((row) => `${row.path}: ${row.state}`);
    return { lost, duplicated, corrupted, maxSessionIdsPerVersion, unfinished, integrity };
  } finally {
    db.close();
  }
}

/** Scenario 9: the canary key and URL signatures must not appear in any text the product wrote. */
export function secretLeaks(texts: readonly string[], workspace: Workspace): string[] {
  const database = [workspace.database, `${workspace.database}-wal`]
    .filter((file) => existsSync(file))
    .map((file) => readFileSync(file).toString('latin1'));
  const leaks: string[] = [];
  for (const [index, text] of [...texts, ...database].entries()) {
    for (const secret of [CANARY_KEY, 'X-Goog-Signature', 'X-Goog-Credential']) {
      if (text.includes(secret)) leaks.push(`${secret} in text #${index}`);
    }
  }
  return leaks;
}
