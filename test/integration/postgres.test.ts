import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { editConfig, runCliAsync, useWorkspace, waitForState, waitUntil, type Workspace } from '../helpers/daemon.js';
import { postgresUnavailable, usePostgres, type PostgresServer } from '../helpers/postgres.js';
import { useTcpProxies } from '../helpers/tcpProxy.js';

/** GET on loopback: the status code and body. */
async function get(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url);
  return { status: response.status, text: await response.text() };
}

const unavailable = postgresUnavailable();
if (unavailable !== undefined) console.log(`PostgreSQL daemon tests: ${unavailable}`);

/**
 * The workspace's daemon keeps its queue in a fresh database of `server`, its folder shared as "inbox"; the password only in PGPASSWORD.
 * `port`: reach the server there instead (a proxy the test can cut).
 */
async function onPostgres(workspace: Workspace, server: PostgresServer, database: string, port = server.port): Promise<string> {
  const url = (await server.createDatabase(database)).replace(`:${server.port}/`, `:${port}/`);
  editConfig(workspace, (config) => {
    config.state = { postgres: { url } };
    config.folders[0]!.share = 'inbox';
  });
  workspace.env.PGPASSWORD = server.password;
  // listJobs reads the state in this process, as `list` would with the same environment.
  process.env.PGPASSWORD = server.password;
  return url;
}

// Skipped only outside CI: under CI=true a missing server fails in beforeAll, saying why.
describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('a daemon whose queue is in PostgreSQL (state.postgres)', () => {
  const server = usePostgres();
  const { workspace, startDaemon } = useWorkspace();
  const startProxy = useTcpProxies();
  afterEach(() => {
    delete process.env.PGPASSWORD;
  });

  it('uploads, and says which machine holds each file, in list, status and the log, never with the password', async () => {
    const url = await onPostgres(workspace, server, 'daemon_basic');
    const daemon = startDaemon(workspace);
    expect((await daemon.ready()).database).toBe(url.replace('cryomix@', ''));
    const mix = join(workspace.inbox, 'first mix.wav');
    writeFileSync(mix, pcmWav(20_000));
    await waitForState(workspace, mix, 'done');

    const listed = JSON.parse((await runCliAsync(workspace, ['list', '--json'])).stdout) as { path: string; state: string; host: string | null }[];
    expect(listed).toEqual([expect.objectContaining({ path: mix, state: 'done', host: hostname() })]);
    expect((await runCliAsync(workspace, ['list'])).stdout).toMatch(new RegExp(`^STATE +FILE +SIZE +TRIES +SESSION-ID +HOST +DETAIL\\n.*${hostname()}`));
    const status = JSON.parse((await runCliAsync(workspace, ['status', '--json'])).stdout) as { database: string; counts: Record<string, number>; hosts: { host: string; lastHeartbeat: string }[] };
    expect(status).toMatchObject({ database: url.replace('cryomix@', ''), counts: { done: 1 }, hosts: [{ host: hostname(), pid: expect.any(Number) }] });
    expect(Date.now() - Date.parse(status.hosts[0]!.lastHeartbeat)).toBeLessThan(30_000);
    expect((await runCliAsync(workspace, ['status'])).stdout).toContain(`Daemon on ${hostname()} (pid `);

    await daemon.stop('SIGTERM');
    expect(daemon.output).not.toContain(server.password);
  });

  it('holds its work while PostgreSQL cannot be reached, says so on /healthz, and uploads what was dropped meanwhile once it answers', async () => {
    const proxy = await startProxy(server.port);
    await onPostgres(workspace, server, 'daemon_outage', proxy.port);
    editConfig(workspace, (config) => {
      config.http = { listen: '127.0.0.1:0' };
    });
    const daemon = startDaemon(workspace);
    const health = `${(await daemon.waitForLog((record) => typeof record.url === 'string')).url as string}/healthz`;
    await daemon.ready();
    expect((await get(health)).status).toBe(200);

    proxy.sever();
    // Something must ask the database to find it gone: a file dropped now.
    const during = join(workspace.inbox, 'dropped during the outage.wav');
    writeFileSync(during, pcmWav(20_000));
    const down = await waitUntil(async () => {
      const answer = await get(health);
      return answer.status === 503 && answer;
    }, 30_000, () => daemon.output.slice(-2000));
    expect(down.text).toMatch(/the state database has not answered for \d+ s \(cannot use the PostgreSQL state database at 127\.0\.0\.1:\d+\/daemon_outage as cryomix: .*\); uploads wait/);
    const status = await runCliAsync(workspace, ['status']);
    expect(status.status).not.toBe(0);
    expect(status.stderr + status.stdout).toMatch(/cannot use the PostgreSQL state database at 127\.0\.0\.1:\d+\/daemon_outage/);

    proxy.restore();
    await waitForState(workspace, during, 'done', 30_000);
    expect((await get(health)).status).toBe(200);
    expect(daemon.output).toMatch(/the state database answers again after \d+ s/);
    await daemon.stop('SIGTERM');
    expect(daemon.output).not.toContain(server.password);
  });

  it.each([
    ['refuses the password', 'wrong_password', (workspace: Workspace) => (workspace.env.PGPASSWORD = 'not the password'), /password authentication failed/],
    ['asks for a password none of the places has', 'no_password', (workspace: Workspace) => delete workspace.env.PGPASSWORD, /the server asks for a password and none was found/],
  ])('refuses to start when PostgreSQL %s, naming the server and where the password comes from', async (_case, database, spoil, said) => {
    await onPostgres(workspace, server, database);
    spoil(workspace);
    const daemon = startDaemon(workspace);
    expect((await daemon.exited).code).not.toBe(0);
    expect(daemon.output).toContain(`cannot use the PostgreSQL state database at 127.0.0.1:${server.port}/${database} as cryomix: `);
    expect(daemon.output).toMatch(said);
    expect(daemon.output).toContain('PGPASSWORD, ~/.pgpass or $CREDENTIALS_DIRECTORY/cryomix-postgres-password');
    expect(daemon.output).not.toContain(server.password);
  });
});
