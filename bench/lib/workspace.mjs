import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A directory with an inbox, a state DB and a config pointing at `sandbox`,
 * written as test/helpers/daemon.ts does (JSON is YAML). Everything the
 * benchmark does not vary keeps the product's defaults, except minBytes
 * (small files in the soak and startup trees) and the summary line (noise).
 * `moreFolders` are further folder entries (each with its `path`), after the inbox.
 * `state` replaces the private SQLite file (a shared `{ postgres: { url } }`);
 * `env` adds variables (PGPASSWORD): the harness's own PG* never leak in.
 */
export function createWorkspace(dir, sandbox, { folder = {}, uploads = {}, inbox: inboxPath, moreFolders = [], state, env: moreEnv = {} } = {}) {
  const inbox = inboxPath ?? join(dir, 'inbox');
  mkdirSync(dir, { recursive: true });
  mkdirSync(inbox, { recursive: true });
  for (const more of moreFolders) mkdirSync(more.path, { recursive: true });
  const database = join(dir, 'state', 'state.db');
  const config = {
    api: { baseUrl: sandbox.url, uploadOrigins: [sandbox.storageOrigin] },
    state: state ?? { database },
    uploads: { minBytes: 1000, ...uploads },
    folders: [{ path: inbox, ...folder }, ...moreFolders],
    log: { level: 'info', summaryMinutes: 0 },
  };
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const probeFile = join(dir, 'probe.jsonl');
  const env = { ...process.env, CRYOMIX_API_KEY: sandbox.apiKey, BENCH_PROBE_FILE: probeFile };
  for (const key of ['CRYOMIX_WATCH_CONFIG', 'CREDENTIALS_DIRECTORY', 'NOTIFY_SOCKET', 'NODE_OPTIONS', 'PGPASSWORD', 'PGPASSFILE']) delete env[key];
  Object.assign(env, moreEnv);
  return { dir, inbox, database, configFile, probeFile, env, config };
}
