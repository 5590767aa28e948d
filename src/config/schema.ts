import { z } from 'zod';
import { isLoopbackHost } from '../net/loopback.js';
import {
  integer,
  listenAddress,
  nonNegativeNumber,
  numberBetween,
  orEmpty,
  origin,
  pathString,
  positiveNumber,
  serviceUrl,
} from './fields.js';
import { rate } from './rate.js';
import { schedule } from './schedule.js';

/*
 * The YAML file of SPEC "Configuration", key for key. Every object is strict
 * because a misspelt key silently falling back to its default is exactly the
 * bug a config file must not have.
 */

/** A lower bound that must not exceed its upper bound; the error lands on the lower one, naming the other. */
function notAbove<K extends string>(low: K, high: K, highKeyPath: string) {
  return (value: Record<K, number>, ctx: z.RefinementCtx) => {
    if (value[low] <= value[high]) return;
    ctx.addIssue({ code: 'custom', path: [low], message: `expected at most ${highKeyPath} (${value[high]})`, input: value[low] });
  };
}

const api = z.strictObject({
  baseUrl: serviceUrl().prefault('https://platform.cryo-mix.com'),
  origin: origin.optional(),
  uploadOrigins: z
    .array(serviceUrl(), { error: 'expected a list of URLs' })
    .min(1, { error: 'expected at least one URL: signed upload URLs must start with one' })
    .prefault(['https://storage.googleapis.com']),
  // The API's own bounds for expiration_seconds.
  urlExpirySeconds: integer(1, 604800).default(900),
  requestTimeoutSeconds: positiveNumber().default(30),
  /** While the API refuses the key (401), uploads pause and the key is rechecked this often. */
  authRecheckSeconds: positiveNumber().default(60),
  keyFile: pathString.optional(),
});

const retry = z
  .strictObject({
    initialDelaySeconds: positiveNumber().default(2),
    maxDelaySeconds: positiveNumber().default(300),
  })
  .superRefine(notAbove('initialDelaySeconds', 'maxDelaySeconds', 'uploads.retry.maxDelaySeconds'));

const uploads = z
  .strictObject({
    concurrency: integer(1, 32).default(2),
    minBytes: integer(0).default(1_000_000),
    maxBytes: integer(0).default(1_073_741_824),
    stallTimeoutSeconds: positiveNumber().default(60),
    retry: orEmpty(retry),
    /** How long SIGTERM lets running PUTs finish before aborting them. */
    shutdownGraceSeconds: nonNegativeNumber().default(20),
    /** One cap shared by every upload in flight (src/transfer/throttle.ts); `off`: none. */
    maxBytesPerSecond: rate().default(null),
    /** Weekly windows with their own cap, or `pause`; outside them, maxBytesPerSecond (src/transfer/timetable.ts). */
    schedule: schedule.optional(),
  })
  .superRefine(notAbove('minBytes', 'maxBytes', 'uploads.maxBytes'));

const downloads = z.strictObject({
  /** One cap shared by every download of masters; `off`: none. Not scheduled. */
  maxBytesPerSecond: rate().default(null),
});

export const MASTER_FILES = ['FinalMaster.wav', 'FinalMaster.mp3', 'MasteringReport.json', 'OriginalMix.mp3'] as const;
export type MasterFile = (typeof MASTER_FILES)[number];

// Ranges from the API's POST /api/mastering.
const settings = z.strictObject({
  mwa: numberBetween(-5, 5).optional(),
  meq: numberBetween(0, 10).optional(),
  mha: numberBetween(-5, 5).optional(),
  mma: numberBetween(-5, 5).optional(),
  mla: numberBetween(-5, 5).optional(),
  mca: numberBetween(-5, 5).optional(),
});

const mastering = z.strictObject(
  {
    settings: orEmpty(settings),
    /** Absent: `Masters` inside the watched folder, which is then not watched. */
    outputDir: pathString.optional(),
    files: z
      .array(z.enum(MASTER_FILES))
      .min(1, { error: 'expected at least one file name' })
      .refine((files) => new Set(files).size === files.length, { error: 'expected each file name once' })
      .default((): MasterFile[] => ['FinalMaster.wav', 'MasteringReport.json']),
    pollIntervalSeconds: positiveNumber().default(5),
    // A job the API keeps pending or processing longer fails (src/pipeline/master.ts); fractions allowed for tests.
    timeoutMinutes: positiveNumber().default(240),
    /** A program and its arguments, run without a shell once the masters are in place; the masters folder is appended. */
    onDone: z
      .array(z.string().min(1, { error: 'expected a non-empty argument' }), { error: 'expected a list: a program and its arguments' })
      .min(1, { error: 'expected at least the program to run' })
      .optional(),
  },
  // An empty `mastering:` is refused rather than guessed: it would start paid work.
  {
    error: (issue) =>
      issue.code === 'invalid_type' ? 'expected a mapping (mastering: {} for the default settings)' : undefined,
  },
);

/** Names a folder across machines: rows in a shared queue are keyed by share and the path within it. */
const shareName = z
  .string({ error: 'expected a share name' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a name of letters, digits, ".", "_" or "-", such as exports' });

const folder = z
  .strictObject({
    path: pathString,
    share: shareName.optional(),
    recursive: z.boolean().default(true),
    // Fractions allowed so tests can settle in 0.2 s.
    settleSeconds: positiveNumber().default(5),
    // auto: poll on network and FUSE file systems (src/watch/watchMode.ts), inotify elsewhere.
    polling: z.enum(['auto', 'always', 'never']).default('auto'),
    // Counted from the end of one pass to the start of the next (src/watch/poller.ts).
    pollIntervalSeconds: positiveNumber().default(10),
    // A folder watched with inotify is also walked this often, for what its events missed (src/pipeline/folder.ts).
    rescanIntervalSeconds: positiveNumber().default(600),
    // A file operation there that takes longer marks the folder not answering (src/files/folderGate.ts).
    answerTimeoutSeconds: positiveNumber().default(30),
    ignore: z.array(z.string().min(1, { error: 'expected a non-empty glob pattern' })).default(() => []),
    afterUpload: z.enum(['keep', 'move', 'delete']).default('keep'),
    moveTo: pathString.optional(),
    /** Absent: upload only. */
    mastering: mastering.optional(),
  })
  .superRefine((value, ctx) => {
    if (value.afterUpload === 'move' && value.moveTo === undefined) {
      ctx.addIssue({ code: 'custom', path: ['moveTo'], message: 'required when afterUpload is move' });
    }
    if (value.afterUpload !== 'move' && value.moveTo !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['moveTo'],
        message: `only used when afterUpload is move (it is ${value.afterUpload}): remove it or set afterUpload: move`,
      });
    }
  });

/**
 * A PostgreSQL database several daemons share as their queue. The password
 * never goes in the URL (the config file is readable by more people than
 * the password should be): PGPASSWORD, a pgpass file or the systemd
 * credential cryomix-postgres-password holds it.
 */
const postgres = z.strictObject({
  url: z.string({ error: 'expected a postgres:// URL' }).superRefine((text, ctx) => {
    const problem = postgresUrlProblem(text);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `expected ${problem}`, input: text });
  }),
  /** node-postgres's `ssl`: true for the system's CAs, or tls.connect options with `ca`, `cert` and `key` as files to read. */
  ssl: z
    .union([
      z.boolean(),
      z.strictObject({
        rejectUnauthorized: z.boolean().optional(),
        ca: pathString.optional(),
        cert: pathString.optional(),
        key: pathString.optional(),
        servername: z.string().min(1).optional(),
      }),
    ])
    .optional(),
});

function postgresUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'a URL such as postgres://cryomix@db.studio.lan:5432/cryomix';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return 'a postgres:// URL';
  if (url.password !== '') return 'a URL without a password (set PGPASSWORD, a pgpass file or the credential cryomix-postgres-password)';
  if (url.hostname === '' || url.username === '' || url.pathname.length <= 1) return 'a URL with a user, a host and a database, such as postgres://cryomix@db.studio.lan:5432/cryomix';
  return undefined;
}

const DEFAULT_DATABASE = '/var/lib/cryomix-watch/state.db';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = z.strictObject({
  api: orEmpty(api),
  state: orEmpty(
    z
      .strictObject({
        database: pathString.optional(),
        postgres: postgres.optional(),
      })
      .superRefine((value, ctx) => {
        if (value.database !== undefined && value.postgres !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['postgres'], message: 'state.database and state.postgres exclude each other: keep state.postgres for a queue shared by several machines, state.database for one' });
        }
      })
      .transform(({ database, postgres }) => ({ database: database ?? DEFAULT_DATABASE, ...(postgres === undefined ? {} : { postgres }) })),
  ),
  uploads: orEmpty(uploads),
  downloads: orEmpty(downloads),
  folders: z
    .array(folder, { error: 'expected a list of folders to watch' })
    .min(1, { error: 'expected at least one folder to watch' }),
  log: orEmpty(
    z.strictObject({
      level: z.enum(LOG_LEVELS).default('info'),
      /** While files are moving, one line this often says what was done, instead of a line per chunk. 0: never. */
      summaryMinutes: nonNegativeNumber().default(5),
    }),
  ),
  /** /healthz, /metrics and the status page. Off unless configured. */
  http: z
    .strictObject({
      listen: listenAddress,
      token: z.string({ error: 'expected a non-empty token' }).min(1).optional(),
    })
    .superRefine((value, ctx) => {
      // The page shows file names and the metrics show activity: beyond this machine, only to whoever has the token.
      if (!isLoopbackHost(value.listen.host) && value.token === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['token'],
          message: `required when http.listen is not a loopback address (${value.listen.host}); set a long random token, or listen on 127.0.0.1`,
        });
      }
    })
    .optional(),
}).superRefine((config, ctx) => {
  if (config.state.postgres === undefined) return;
  // Several machines mount one share at different paths: only a name ties their rows together.
  const seen = new Map<string, number>();
  config.folders.forEach((folder, index) => {
    if (folder.share === undefined) {
      ctx.addIssue({ code: 'custom', path: ['folders', index, 'share'], message: 'required with state.postgres: the name every machine gives this folder, such as exports' });
    } else if (seen.has(folder.share)) {
      ctx.addIssue({ code: 'custom', path: ['folders', index, 'share'], message: `already the share of folders[${seen.get(folder.share)}]: each folder needs its own name` });
    } else {
      seen.set(folder.share, index);
    }
  });
});

/** Fully defaulted; after `loadConfig`/`parseConfig` every path is absolute. */
export type Config = z.output<typeof configSchema>;
export type FolderConfig = Config['folders'][number];
export type MasteringConfig = NonNullable<FolderConfig['mastering']>;
export type PostgresConfig = NonNullable<Config['state']['postgres']>;
export type PostgresTls = NonNullable<PostgresConfig['ssl']>;
