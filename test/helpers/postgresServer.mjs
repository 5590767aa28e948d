import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/*
 * A private PostgreSQL server: Debian's binaries, a fresh data directory,
 * 127.0.0.1 and a unix socket only that server's user can reach. The role
 * the product uses logs in with a password over TCP (scram-sha-256), so the
 * product's password handling (PGPASSWORD) is exercised for real.
 *
 * Plain JavaScript, type-checked through its JSDoc (checkJs in
 * tsconfig.test.json), so that the tests (test/helpers/postgres.ts adds
 * installing the server and vitest's hooks) and the benchmarks (bench/*.mjs,
 * which Node runs without a TypeScript step) start the same server the same
 * way. It imports nothing of ours.
 */

/**
 * @typedef {object} PostgresServer
 * @property {string} url postgres://cryomix@127.0.0.1:PORT/cryomix — the password is not in it.
 * @property {string} password The `cryomix` role's password, for PGPASSWORD or inside the URL. pg 8 ignores a `password` option given beside a connectionString: the URL's empty password wins, and only then does PGPASSWORD fill it.
 * @property {number} port
 * @property {number | undefined} pid The postmaster's process id while it runs (its backends are its children); a restart changes it.
 * @property {(name: string) => Promise<string>} createDatabase An empty database `name` owned by the `cryomix` role; returns its URL (without the password).
 * @property {() => Promise<void>} restart Fast shutdown (clients' connections are cut, as in a real restart), then the same data directory started again on the same port.
 * @property {() => Promise<void>} stop Fast shutdown, waits until the server has exited, then removes its files. Safe to call twice.
 */

const ROLE = 'cryomix';
const READY_WITHIN_MS = 30_000;
const EXIT_WITHIN_MS = 30_000;

/**
 * Debian installs each major version beside the others: the newest one's
 * bin directory, or undefined when no server is installed.
 * @returns {string | undefined}
 */
export function postgresBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((version) => /^\d+$/.test(version) && existsSync(join(root, version, 'bin', 'postgres')) && existsSync(join(root, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/**
 * PostgreSQL refuses to run as root: as root, the server runs as `postgres`,
 * or else `nobody`; otherwise as whoever runs this.
 * @returns {{ uid: number; gid: number } | undefined}
 */
function serverAccount() {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as');
}

/**
 * A loopback port nobody listens on right now: postgres must be told its port.
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : NaN;
      server.close(() => resolve(port));
    });
  });
}

/** @param {string} file */
const lastLines = (file, count = 20) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-count).join('\n') : '(no log)');

/**
 * Starts a server with a `cryomix` role and database. Throws, saying why,
 * when it cannot (no binaries: see postgresBin; installing them is the
 * caller's business).
 * @returns {Promise<PostgresServer>}
 */
export async function startPostgresServer() {
  const bin = postgresBin();
  if (bin === undefined) throw new Error('no PostgreSQL server in /usr/lib/postgresql/*/bin (apt-get install postgresql)');
  const account = serverAccount();
  const as = account === undefined ? {} : { uid: account.uid, gid: account.gid };
  // A clean environment: the caller's own PG* variables must not steer the server.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };

  // Holds the data directory, the socket and the log; nobody but the server's user may enter it.
  const dir = mkdtempSync(join(tmpdir(), 'cryomix-pg-'));
  if (account !== undefined) chownSync(dir, account.uid, account.gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  const port = await freePort();
  const password = randomBytes(16).toString('hex');
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let server;

  /**
   * @template T
   * @param {string} database
   * @param {(client: pg.Client) => Promise<T>} work
   * @returns {Promise<T>}
   */
  const admin = async (database, work) => {
    const client = new pg.Client({ host: dir, port, user: 'postgres', database });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };

  const start = async () => {
    const output = openSync(log, 'a');
    if (account !== undefined) chownSync(log, account.uid, account.gid);
    // Only 127.0.0.1 is listened on. fsync stays on, as in production: turning it off saved under 0.1 s of a ~1.6 s start here.
    const child = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`], {
      ...as,
      env,
      cwd: dir,
      stdio: ['ignore', output, output],
    });
    closeSync(output);
    server = child;
    /** @type {string | undefined} */
    let failed;
    child.once('error', (error) => {
      failed = `could not be run: ${String(error)}`;
    });
    child.once('exit', (code, signal) => {
      failed = `exited while starting (${signal ?? code})`;
    });
    const deadline = Date.now() + READY_WITHIN_MS;
    for (;;) {
      if (failed !== undefined) throw new Error(`postgres ${failed}:\n${lastLines(log)}`);
      try {
        await admin('postgres', (client) => client.query('SELECT 1'));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`postgres was not ready within ${READY_WITHIN_MS} ms (${String(error)}):\n${lastLines(log)}`);
      }
      await sleep(50);
    }
  };

  /**
   * `keep`: a fast shutdown (SIGINT, as pg_ctl stop -m fast sends), whose
   * checkpoint keeps the data for the next start. Otherwise an immediate one
   * (SIGQUIT): the data directory is deleted next, and a checkpoint on a
   * loaded machine's disk once took over 30 s.
   * @param {{ keep: boolean }} options
   */
  const shutDown = async ({ keep }) => {
    const child = server;
    server = undefined;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const killer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
    child.kill(keep ? 'SIGINT' : 'SIGQUIT');
    await exited;
    clearTimeout(killer);
    if (keep && child.signalCode === 'SIGKILL') throw new Error(`postgres did not stop within ${EXIT_WITHIN_MS} ms of SIGINT and was killed:\n${lastLines(log)}`);
  };

  /** @param {string} database */
  const urlOf = (database) => `postgres://${ROLE}@127.0.0.1:${port}/${database}`;

  try {
    // Trust on the socket (only the server's user and root can enter its directory), passwords over TCP.
    const initdb = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--encoding=UTF8', '--locale=C', '--auth-local=trust', '--auth-host=scram-sha-256'], {
      ...as,
      env,
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (initdb.status !== 0) throw new Error(`initdb failed (${initdb.status ?? String(initdb.error)}):\n${initdb.stderr.trim()}`);
    await start();
    await admin('postgres', async (client) => {
      // The password is hex, so it is safe inside the literal; DDL takes no parameters.
      await client.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${password}'`);
      await client.query(`CREATE DATABASE ${ROLE} OWNER ${ROLE}`);
    });
  } catch (error) {
    // The error that stopped the start is the one to report; a failed shutdown (killed instead) is only logged.
    await shutDown({ keep: false }).catch((stopError) => console.error(String(stopError)));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    url: urlOf(ROLE),
    password,
    port,
    get pid() {
      return server?.pid;
    },
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`Expected \`name\` to be a lower-case SQL identifier, got \`${name}\``);
      await admin('postgres', (client) => client.query(`CREATE DATABASE ${name} OWNER ${ROLE}`));
      return urlOf(name);
    },
    async restart() {
      await shutDown({ keep: true });
      await start();
    },
    async stop() {
      try {
        await shutDown({ keep: false });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
