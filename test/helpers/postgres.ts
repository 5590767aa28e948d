import { afterAll, beforeAll } from 'vitest';
import { aptProvide } from './apt.js';
import { postgresBin, startPostgresServer, type PostgresServer } from './postgresServer.mjs';

/*
 * A private PostgreSQL server for tests. Starting and stopping it lives in
 * postgresServer.mjs, plain JavaScript that the benchmarks use too; this
 * file adds what only tests need: installing Debian's server where it is
 * missing, and one server per test file through vitest's hooks.
 */
export type { PostgresServer };

/**
 * Why no server can be started here, or undefined when one can (Debian's
 * `postgresql` installed with apt if missing, as root). Decided once per file,
 * as vitest's skipIf needs it while collecting.
 */
export function postgresUnavailable(): string | undefined {
  if (postgresBin() !== undefined) return undefined;
  // The server binaries are not on PATH, so aptProvide looks for pg_ctlcluster,
  // which postgresql-common brings along with every server package.
  const unavailable = aptProvide(['pg_ctlcluster'], ['postgresql']);
  if (unavailable !== undefined) return unavailable;
  return postgresBin() === undefined ? 'no PostgreSQL server in /usr/lib/postgresql/*/bin although postgresql-common is installed (apt-get install postgresql)' : undefined;
}

/** Starts a server with a `cryomix` role and database; fails, saying why, where PostgreSQL cannot be had. */
export async function startPostgres(): Promise<PostgresServer> {
  const unavailable = postgresUnavailable();
  if (unavailable !== undefined) throw new Error(`cannot start PostgreSQL: ${unavailable}`);
  return startPostgresServer();
}

/**
 * One server for all of a file's tests: started before them, stopped after
 * them whatever happened. The object is filled in by beforeAll, so a test
 * names it like a plain const.
 */
export function usePostgres(): PostgresServer {
  const server = {} as PostgresServer;
  beforeAll(async () => {
    Object.assign(server, await startPostgres());
  }, 120_000);
  afterAll(() => server.stop?.(), 60_000);
  return server;
}
