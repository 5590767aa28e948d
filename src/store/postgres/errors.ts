import { CryomixWatchError } from '../../errors.js';
import { StoreUnavailableError } from '../failures.js';

/** What the state database is, as an error may name it: `host:port/database` and the role, never the password. */
export interface PostgresTarget {
  host: string;
  port: number;
  database: string;
  user: string | undefined;
}

export const describeTarget = (target: PostgresTarget): string =>
  `${target.host}:${target.port}/${target.database}${target.user === undefined ? '' : ` as ${target.user}`}`;

/**
 * The PostgreSQL state database cannot be reached or refused us (down,
 * unreachable, wrong password, no such database), or a connection to it was
 * lost mid-transaction. Uploads must pause until it answers again; nothing
 * was committed by the call that failed. The message names the server and
 * what to check, and never carries the password (nor does `cause`: it is
 * dropped when it would).
 */
export class PostgresUnavailableError extends StoreUnavailableError {
  readonly target: PostgresTarget;
  /** The server's SQLSTATE or the socket's errno code, when there was one (`28P01`, `ECONNREFUSED`…). */
  readonly reasonCode: string | undefined;

  constructor(target: PostgresTarget, reason: string, reasonCode: string | undefined, fix: string, options?: { cause?: unknown }) {
    super('PG_UNAVAILABLE', `cannot use the PostgreSQL state database at ${describeTarget(target)}: ${reason} (${fix})`, options);
    this.target = target;
    this.reasonCode = reasonCode;
  }
}

/** The database's schema was written by a newer cryomix-watch. */
export class PostgresFutureSchemaError extends CryomixWatchError {
  constructor(target: PostgresTarget, found: number, known: number) {
    super(
      'DB_FROM_FUTURE',
      `the PostgreSQL state database at ${describeTarget(target)} was written by a newer cryomix-watch (schema ${found}, this version knows ${known}); upgrade cryomix-watch on this machine or point state.postgres.url elsewhere`,
    );
  }
}

/** A path outside every folder this store was given: rows are keyed by a folder's share, so it has no key. */
export class UnsharedPathError extends CryomixWatchError {
  readonly path: string;

  constructor(path: string, what: 'path' | 'folder') {
    super(
      'PATH_NOT_SHARED',
      what === 'folder'
        ? `${path} is not a configured folder with a share: with state.postgres every folder needs folders[].share, the name it has on every machine`
        : `${path} is under no configured folder with a share: with state.postgres, configure its folder with folders[].share (the name it has on every machine)`,
    );
    this.path = path;
  }
}

/** An option of PostgresJobStore.open that cannot work: which one, what was expected, what was given. */
export class PostgresStoreOptionError extends CryomixWatchError {
  readonly option: string;

  constructor(option: string, expected: string, actual: string) {
    super('PG_OPTION_INVALID', `Expected \`${option}\` to be ${expected}, got ${actual}`);
    this.option = option;
  }
}
