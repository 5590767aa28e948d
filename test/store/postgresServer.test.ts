import { statSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresUnavailable, usePostgres } from '../helpers/postgres.js';

const unavailable = postgresUnavailable();
if (unavailable !== undefined) console.log(`PostgreSQL server tests: ${unavailable}`);

/**
 * Runs `work` on a fresh connection, closed after it whatever happened. The
 * password goes into the URL: pg 8 lets a connection string's empty password
 * override a `password` option given beside it (PGPASSWORD still applies).
 */
async function withClient<T>(url: string, password: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const withPassword = new URL(url);
  withPassword.password = password;
  const client = new pg.Client({ connectionString: withPassword.href });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

// Skipped only outside CI: under CI=true a missing server fails in beforeAll, saying why.
describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('the private PostgreSQL server tests use (skipped outside CI where PostgreSQL cannot be installed)', () => {
  const server = usePostgres();

  it('answers on 127.0.0.1 with the role\'s password, and the URL carries no password', async () => {
    expect(server.url).toBe(`postgres://cryomix@127.0.0.1:${server.port}/cryomix`);
    const now = await withClient(server.url, server.password, (client) => client.query<{ now: Date }>('SELECT now()'));
    expect(now.rows[0]?.now).toBeInstanceOf(Date);
  });

  it('takes the password from PGPASSWORD beside the bare URL, as the product is given it', async () => {
    const before = process.env.PGPASSWORD;
    process.env.PGPASSWORD = server.password;
    const client = new pg.Client({ connectionString: server.url });
    try {
      await client.connect();
      expect((await client.query<{ user: string }>('SELECT current_user AS user')).rows).toEqual([{ user: 'cryomix' }]);
    } finally {
      await client.end();
      if (before === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = before;
    }
  });

  it('runs as a user other than root, and the role is no superuser', async () => {
    await withClient(server.url, server.password, async (client) => {
      const result = await client.query<{ pid: number; superuser: boolean }>('SELECT pg_backend_pid() AS pid, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
      const { pid, superuser } = result.rows[0]!;
      // The backend serving this connection, forked by the postmaster as its user; looked at while it still serves us.
      expect(statSync(`/proc/${pid}`).uid).not.toBe(0);
      expect(superuser).toBe(false);
    });
  });

  it('refuses a wrong password', async () => {
    const refused = withClient(server.url, `${server.password}-wrong`, (client) => client.query('SELECT 1'));
    await expect(refused).rejects.toMatchObject({ code: '28P01' });
  });

  it('keeps its data across restart()', async () => {
    const url = await server.createDatabase('restart_check');
    await withClient(url, server.password, (client) => client.query("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('before the restart')"));
    await server.restart();
    const kept = await withClient(url, server.password, (client) => client.query<{ note: string }>('SELECT note FROM kept'));
    expect(kept.rows).toEqual([{ note: 'before the restart' }]);
  });

  it('gives each createDatabase its own database', async () => {
    const first = await server.createDatabase('isolated_one');
    const second = await server.createDatabase('isolated_two');
    await withClient(first, server.password, (client) => client.query('CREATE TABLE only_here (id int)'));
    const seen = await withClient(second, server.password, (client) => client.query("SELECT to_regclass('only_here') AS found"));
    expect(seen.rows).toEqual([{ found: null }]);
    await expect(server.createDatabase('Bad-Name')).rejects.toThrow('Expected `name` to be a lower-case SQL identifier, got `Bad-Name`');
  });
});
