import { isAbsolute } from 'node:path';
import type pg from 'pg';
import type { TransitionEvent } from '../job.js';
import { LEASE_MS } from '../store.js';
import { PostgresStoreOptionError } from './errors.js';

/** One watched folder as this machine mounts it, and the name its files have on every machine. */
export interface SharedFolder {
  path: string;
  share: string;
}

/** The daemon this store claims rows for. */
export interface Holder {
  host: string;
  pid: number;
}

export interface PostgresStoreOptions {
  /**
   * `postgres://user@host:5432/db` (TLS and other settings as node-postgres
   * reads them from the URL). The password comes from `password`, else
   * PGPASSWORD or ~/.pgpass, as node-postgres finds them.
   */
  url?: string;
  /** Put into the URL's connection: node-postgres ignores a password given beside a connection string. */
  password?: string;
  /** TLS options as node-postgres takes them. */
  ssl?: pg.PoolConfig['ssl'];
  /** A pool to use instead of `url`: the caller's, so close() leaves it open. */
  pool?: pg.Pool;
  holder: Holder;
  folders: readonly SharedFolder[];
  /** Observes committed transitions (logs, counters); must not write to the store. */
  onTransition?: (event: TransitionEvent) => void;
  /** An idle pooled connection failed (the pool drops it and reconnects on the next use). */
  onConnectionError?: (error: Error) => void;
  /** How long a claim holds without renewal, on the database's clock. */
  leaseMs?: number;
  /** The clock of the timestamps the pipeline writes itself (created_at, updated_at, due times); leases never use it. */
  now?: () => number;
}

const shown = (value: unknown) => `\`${String(value)}\` (${typeof value})`;

/** Checked once, at the edge: each problem names the option, what it must be and what it was. */
export function validateOptions(options: PostgresStoreOptions): void {
  if ((options.url === undefined) === (options.pool === undefined)) {
    throw new PostgresStoreOptionError('url', 'given, or else `pool` (exactly one of them)', options.url === undefined ? 'neither' : 'both');
  }
  if (options.url !== undefined && !URL.canParse(options.url)) {
    // The URL itself is not repeated: it may hold a password.
    throw new PostgresStoreOptionError('url', 'a URL such as postgres://user@host:5432/db', 'a string that is not a URL');
  }
  const { host, pid } = options.holder;
  if (typeof host !== 'string' || host === '') throw new PostgresStoreOptionError('holder.host', 'a non-empty string', shown(host));
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new PostgresStoreOptionError('holder.pid', 'a process id (an integer from 1)', shown(pid));
  const leaseMs = options.leaseMs ?? LEASE_MS;
  if (!Number.isSafeInteger(leaseMs) || leaseMs < 1) throw new PostgresStoreOptionError('leaseMs', 'an integer from 1 (milliseconds)', shown(leaseMs));
  const shares = new Map<string, string>();
  options.folders.forEach(({ path, share }, index) => {
    if (typeof path !== 'string' || !isAbsolute(path)) throw new PostgresStoreOptionError(`folders[${index}].path`, 'an absolute path', shown(path));
    if (typeof share !== 'string' || share.trim() === '') throw new PostgresStoreOptionError(`folders[${index}].share`, 'a non-empty name', shown(share));
    const other = shares.get(share);
    if (other !== undefined) throw new PostgresStoreOptionError(`folders[${index}].share`, `a name no other folder of this machine has (${other} has it)`, shown(share));
    shares.set(share, path);
  });
}
