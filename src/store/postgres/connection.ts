import pg from 'pg';
import { PostgresUnavailableError, type PostgresTarget } from './errors.js';
import type { PostgresStoreOptions } from './options.js';

/**
 * bigint columns (ids, sizes, epoch-ms timestamps) read as JS numbers, and
 * every other type as node-postgres reads it. Given with each query, never
 * set on pg.types: that is global, and other code in the process may read
 * int8 as strings on purpose.
 */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: (id, format) => (id === pg.types.builtins.INT8 ? parseSafeInteger : pg.types.getTypeParser(id, format)),
};

function parseSafeInteger(text: string): number {
  const value = Number(text);
  // Past 2^53 a JS number would silently round; no id, size or epoch-ms timestamp comes near it.
  if (!Number.isSafeInteger(value)) throw new RangeError(`a bigint column holds ${text}, beyond what a JS number holds exactly`);
  return value;
}

/** Well within LEASE_MS: our transactions run for milliseconds, and never wait on anything but the database. */
const IDLE_IN_TRANSACTION_MS = 10_000;

/**
 * A server that does not answer (cut off, frozen) is given this long to
 * connect or to answer a statement; then the call fails as unavailable, the
 * connection is dropped, and the daemon holds its work until it answers.
 */
const ANSWER_TIMEOUT_MS = 10_000;

/** How soon a lost LISTEN connection is made again. */
const RELISTEN_MS = 2_000;

/** One statement on a connection: its rows, and how many it changed. */
export type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: readonly unknown[]) => Promise<pg.QueryResult<R>>;

/** The socket-level errno codes of a server that is down, unreachable or went away. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/** SQLSTATEs of a server that refused us or went away: no such database, too many connections, shutting down. */
const UNAVAILABLE_STATES = new Set(['3D000', '53300', '57P01', '57P02', '57P03']);
/** node-postgres's own words for a connection that ended or never opened. */
const LOST_CONNECTION = /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Query read timeout|Client was closed/i;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The database cannot be used right now (as opposed to a statement it refused): uploads pause, and the call may be made again later. */
function isUnavailable(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined && (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08') || code.startsWith('28'))) return true;
  return error instanceof Error && LOST_CONNECTION.test(error.message);
}

/** node-postgres's words when the server asks for a password and none was found. */
const NO_PASSWORD = /client password must be a string/;

function fixFor(code: string | undefined, message: string): string {
  if (code?.startsWith('28') || NO_PASSWORD.test(message)) return 'check the role in state.postgres.url and its password in PGPASSWORD, ~/.pgpass or $CREDENTIALS_DIRECTORY/cryomix-postgres-password';
  if (code === '3D000') return 'create the database, or correct its name in state.postgres.url';
  if (code === '53300') return "the server has no connection slot left: raise its max_connections or lower other clients' pools";
  if (code?.startsWith('57P')) return 'the server is shutting down or restarting: work resumes once it answers again';
  return 'check that PostgreSQL runs and accepts connections from this machine at the host and port of state.postgres.url';
}

/** Where the pool connects, for messages: from the URL or the pool's options, without the password. */
function targetOf(config: pg.PoolConfig): PostgresTarget {
  const url = config.connectionString !== undefined && URL.canParse(config.connectionString) ? new URL(config.connectionString) : undefined;
  const user = (url?.username ? decodeURIComponent(url.username) : undefined) ?? config.user ?? process.env.PGUSER;
  return {
    host: (url?.hostname || url?.searchParams.get('host')) ?? config.host ?? process.env.PGHOST ?? 'localhost',
    port: Number(url?.port || config.port || process.env.PGPORT || 5432),
    database: (url !== undefined && url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined) ?? config.database ?? process.env.PGDATABASE ?? user ?? '',
    user,
  };
}

/**
 * A pool of connections to the state database, and the one place that turns
 * node-postgres's failures to connect into PostgresUnavailableError: with
 * the server named and the fix, and the password scrubbed from the words.
 */
export class Connection {
  readonly target: PostgresTarget;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  /** Texts that must never reach a message: the password, in any of the places it may come from. */
  private readonly secrets: string[];

  constructor(options: Pick<PostgresStoreOptions, 'url' | 'password' | 'ssl' | 'pool' | 'onConnectionError'>) {
    let config: pg.PoolConfig;
    if (options.pool !== undefined) {
      this.pool = options.pool;
      this.ownsPool = false;
      config = options.pool.options;
    } else {
      const url = new URL(options.url!);
      // node-postgres lets a connection string's (empty) password win over a `password` option given beside it.
      if (options.password !== undefined) url.password = options.password;
      config = {
        connectionString: url.href,
        ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
        application_name: 'cryomix-watch',
        // A machine that dies or is cut off is noticed by its sockets, not only at the next statement.
        keepAlive: true,
        // A process frozen inside a transaction (suspended, stopped) must not keep its row locks past a lease: the server ends its session.
        idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
        connectionTimeoutMillis: ANSWER_TIMEOUT_MS,
        query_timeout: ANSWER_TIMEOUT_MS,
      };
      this.pool = new pg.Pool(config);
      this.ownsPool = true;
    }
    this.target = targetOf(config);
    const fromUrl = config.connectionString !== undefined && URL.canParse(config.connectionString) ? decodeURIComponent(new URL(config.connectionString).password) : '';
    this.secrets = [options.password, fromUrl, typeof config.password === 'string' ? config.password : undefined, process.env.PGPASSWORD].filter(
      (secret): secret is string => secret !== undefined && secret !== '',
    );
    // An idle connection that fails is dropped by the pool and replaced on the next use; without a listener it would end the process.
    const onError = options.onConnectionError;
    this.pool.on('error', (error) => onError?.(this.unavailable(error)));
  }

  /** A failure to reach or keep the server, as the program reports it; anything else as it was. */
  private wrap(error: unknown): unknown {
    return isUnavailable(error) ? this.unavailable(error) : error;
  }

  private unavailable(error: unknown): PostgresUnavailableError {
    if (error instanceof PostgresUnavailableError) return error;
    const code = codeOf(error);
    const raw = error instanceof Error ? error.message || code || error.name : String(error);
    const reason = this.secrets.reduce((text, secret) => text.split(secret).join('<redacted>'), raw);
    const leaks = (text: string | undefined) => text !== undefined && this.secrets.some((secret) => text.includes(secret));
    // The cause is kept for its stack and fields, unless its own words would carry the password.
    const cause = error instanceof Error && !leaks(error.message) && !leaks(error.stack) ? { cause: error } : undefined;
    const said = NO_PASSWORD.test(reason) ? 'the server asks for a password and none was found' : reason;
    return new PostgresUnavailableError(this.target, said, code, fixFor(code, reason), cause);
  }

  /**
   * A pooled client, watched while it is out: a connection that fails
   * between two statements emits an error nobody would hear (and Node would
   * end the process); the next statement on it fails and says so.
   */
  private async checkout(): Promise<{ client: pg.PoolClient; done: (failed?: unknown) => void }> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.unavailable(error);
    }
    let lost: Error | undefined;
    const onError = (error: Error) => {
      lost = error;
    };
    client.on('error', onError);
    return {
      client,
      done: (failed) => {
        client.removeListener('error', onError);
        // A connection that failed, or that a failed ROLLBACK may have left inside a transaction, is closed, never reused.
        const broken = lost ?? (failed === undefined ? undefined : failed instanceof Error ? failed : new Error(String(failed)));
        client.release(broken);
      },
    };
  }

  private async run<R extends pg.QueryResultRow>(client: pg.PoolClient, text: string, values: readonly unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await client.query<R>({ text, values: [...values], types: TYPES });
    } catch (error) {
      throw this.wrap(error);
    }
  }

  /** One statement on its own (PostgreSQL makes it a transaction of its own). */
  async statement<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: readonly unknown[] = []): Promise<pg.QueryResult<R>> {
    const { client, done } = await this.checkout();
    try {
      const result = await this.run<R>(client, text, values);
      done();
      return result;
    } catch (error) {
      done(error instanceof PostgresUnavailableError ? error : undefined);
      throw error;
    }
  }

  /**
   * Runs `work` between BEGIN and COMMIT on one pooled client, and ROLLBACK
   * when it throws (the client is then closed if the rollback fails too).
   * READ COMMITTED: each statement sees what was committed before it began,
   * which is what makes an advisory lock taken in one statement protect the
   * reads of the next.
   */
  async transaction<T>(work: (query: Query) => Promise<T>): Promise<T> {
    const { client, done } = await this.checkout();
    const query: Query = (text, values) => this.run(client, text, values);
    try {
      await query('BEGIN');
      const result = await work(query);
      await query('COMMIT');
      done();
      return result;
    } catch (error) {
      const rollbackFailed = await client.query('ROLLBACK').then(
        () => undefined,
        (rollbackError: unknown) => rollbackError ?? new Error('ROLLBACK failed'),
      );
      done(rollbackFailed);
      throw error;
    }
  }

  private closing: Promise<void> | undefined;

  /** Ends the pool if this connection made it (once, however often it is called); a pool given by the caller stays the caller's to end. */
  /**
   * Connects once, outside the pool, and lets go: a server that cannot be
   * used is reported at the start. Outside the pool because node-postgres's
   * pool leaves the socket of a connection that failed on our side (a
   * password the server asks for and none was found) open until the server
   * gives up on it, a minute later, which would keep a failed command alive.
   */
  async check(): Promise<void> {
    const client = new pg.Client(this.pool.options);
    try {
      await client.connect();
    } catch (error) {
      throw this.unavailable(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Hears `channel` on a connection of its own, outside the pool, until
   * stopped. A connection lost is replaced after a pause: meanwhile the
   * daemon's poll still finds the work.
   */
  listen(channel: string, onNotify: () => void): () => void {
    let stopped = false;
    let current: pg.Client | undefined;
    let again: NodeJS.Timeout | undefined;
    const connect = () => {
      const listening = new pg.Client(this.pool.options);
      current = listening;
      const lost = () => {
        if (current !== listening) return;
        current = undefined;
        void listening.end().catch(() => undefined);
        if (!stopped) again = setTimeout(connect, RELISTEN_MS).unref();
      };
      listening.on('notification', onNotify);
      listening.on('error', lost);
      listening.on('end', lost);
      listening
        .connect()
        .then(() => listening.query(`LISTEN ${channel}`))
        .catch(lost);
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(again);
      const listening = current;
      current = undefined;
      void listening?.end().catch(() => undefined);
    };
  }

  close(): Promise<void> {
    this.closing ??= this.ownsPool ? this.pool.end() : Promise.resolve();
    return this.closing;
  }
}
