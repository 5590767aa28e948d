import type { Cluster } from './sharedQueue.js';

/**
 * What storage and the shared queue's database say about a cluster's
 * dropped files: the PostgreSQL counterpart of test/chaos/harness.ts's
 * audit, with the rows keyed by share and path within it.
 */
export interface QueueAudit {
  /** Dropped files with no stored object carrying their bytes under one of their rows' Session-Ids. */
  lost: number;
  /** Files stored under more than one object name or Session-Id. */
  duplicated: number;
  /** Objects under a file's Session-Ids whose bytes are not the file's. */
  corrupted: number;
  /** The most Session-Ids that API calls used for one file version (must be 1). */
  maxSessionIdsPerVersion: number;
  /** The most rows one file has (must be 1: every daemon sees the new file, and one row results). */
  maxRowsPerFile: number;
  /** Each file with more than one row, and its rows. */
  severalRows: string[];
  /** API calls and stored objects under a Session-Id that no row has. */
  strangers: number;
  /** Live rows not in a final state. */
  unfinished: string[];
}

/** What a cluster that lost nothing and doubled nothing audits to. */
export const CLEAN_AUDIT: QueueAudit = { lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, maxRowsPerFile: 1, severalRows: [], strangers: 0, unfinished: [] };

/** The audit's verdict beyond lost, duplicated and corrupted. */
export const auditChecksPass = (audit: QueueAudit): boolean =>
  audit.maxSessionIdsPerVersion === 1 && audit.maxRowsPerFile === 1 && audit.strangers === 0 && audit.unfinished.length === 0;

interface AuditRow {
  id: number;
  session_id: string;
  rel_path: string;
  size: string;
  mtime_ms: number;
  state: string;
  current: boolean;
  error: string | null;
}

export async function auditQueue(cluster: Cluster): Promise<QueueAudit> {
  const rows = await cluster.sql<AuditRow>('SELECT id, session_id, rel_path, size, mtime_ms, state, current, error FROM jobs ORDER BY id');
  const objects = cluster.sandbox.objects();
  const rowBySession = new Map(rows.map((row) => [row.session_id, row]));
  let lost = 0;
  let duplicated = 0;
  let corrupted = 0;
  let maxRowsPerFile = 0;
  const severalRows: string[] = [];
  for (const file of cluster.dropped) {
    const rowsOfFile = rows.filter((row) => row.rel_path === file.name);
    maxRowsPerFile = Math.max(maxRowsPerFile, rowsOfFile.length);
    if (rowsOfFile.length > 1) severalRows.push(`${file.name}: ${rowsOfFile.map((row) => `#${row.id} ${row.state} ${row.size} B${row.error ? ` (${row.error})` : ''}`).join('; ')}`);
    const sessions = new Set(rowsOfFile.map((row) => row.session_id));
    const stored = objects.filter((object) => sessions.has(object.sessionId));
    const storedRight = stored.filter((object) => object.sha256 === file.sha256);
    if (storedRight.length === 0) lost++;
    // The same object sent again under the same Session-Id (a PUT whose success a killed daemon never filed) replaces it: not a second copy.
    const names = new Set(storedRight.map((object) => `${object.uploadFolderName}/${object.objectName}`));
    if (names.size > 1 || new Set(storedRight.map((object) => object.sessionId)).size > 1) duplicated++;
    corrupted += stored.length - storedRight.length;
  }

  const calls = cluster.sandbox.requests().filter((request) => request.endpoint === 'multi-upload' && request.sessionId !== null);
  const sessionsPerVersion = new Map<string, Set<string>>();
  for (const call of calls) {
    const row = rowBySession.get(call.sessionId!);
    if (!row) continue;
    const version = `${row.rel_path}\u0000${row.size}\u0000${row.mtime_ms}`;
    sessionsPerVersion.set(version, (sessionsPerVersion.get(version) ?? new Set()).add(row.session_id));
  }
  const strangers = calls.filter((call) => !rowBySession.has(call.sessionId!)).length + objects.filter((object) => !rowBySession.has(object.sessionId)).length;
  return {
    lost,
    duplicated,
    corrupted,
    maxSessionIdsPerVersion: Math.max(0, ...[...sessionsPerVersion.values()].map((ids) => ids.size)),
    maxRowsPerFile,
    severalRows,
    strangers,
    unfinished: rows.filter((row) => row.current && !['done', 'failed', 'rejected', 'removed'].includes(row.state)).map((row) => `${row.rel_path}: ${row.state}`),
  };
}

/** Each of `secrets` (name → text) found in any daemon's output or any row, as "the API key in a's log". */
export async function secretLeaks(cluster: Cluster, secrets: Record<string, string>): Promise<string[]> {
  const [dump] = await cluster.sql<{ text: string }>(`SELECT coalesce(string_agg(jobs::text, E'\\n'), '') AS text FROM jobs`);
  const texts = [...cluster.machines.flatMap((machine) => machine.runs.map((run) => [`${machine.name}'s log`, run.output] as const)), ['the jobs table', dump!.text] as const];
  return texts.flatMap(([where, text]) => Object.entries(secrets).filter(([, secret]) => text.includes(secret)).map(([what]) => `${what} in ${where}`));
}
