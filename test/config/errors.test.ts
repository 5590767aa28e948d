import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { configErrorOf } from './configError.js';

const folder = 'folders:\n  - path: /srv/exports\n';

function problem(yaml: string): string {
  return configErrorOf(() => parseConfig(yaml, '/etc/cryomix-watch'));
}

describe('config errors: the first problem, on one line', () => {
  it.each([
    ['unknown key, with a suggestion', `uploads:\n  concurency: 4\n${folder}`, 'config: uploads.concurency: unknown key (did you mean "concurrency"?)'],
    ['unknown key, nothing close', `${folder}colour: red\n`, 'config: colour: unknown key'],
    ['unknown key wins over the missing key it caused', 'folders:\n  - pth: /srv/a\n', 'config: folders[0].pth: unknown key (did you mean "path"?)'],
    ['bad enum', `${folder}    polling: sometimes\n`, 'config: folders[0].polling: expected one of auto, always, never, got "sometimes"'],
    ['negative number', `${folder}    settleSeconds: -1\n`, 'config: folders[0].settleSeconds: expected a number greater than 0, got -1'],
    ['wrong type', `${folder}    recursive: "yes"\n`, 'config: folders[0].recursive: expected true or false, got "yes"'],
    ['integer range', `uploads: { concurrency: 0 }\n${folder}`, 'config: uploads.concurrency: expected an integer from 1 to 32, got 0'],
    ['fraction where an integer is due', `uploads: { concurrency: 1.5 }\n${folder}`, 'config: uploads.concurrency: expected an integer from 1 to 32, got 1.5'],
    ['minBytes above maxBytes', `uploads: { minBytes: 2000, maxBytes: 1000 }\n${folder}`, 'config: uploads.minBytes: expected at most uploads.maxBytes (1000), got 2000'],
    ['initial delay above max', `uploads:\n  retry: { initialDelaySeconds: 60, maxDelaySeconds: 5 }\n${folder}`, 'config: uploads.retry.initialDelaySeconds: expected at most uploads.retry.maxDelaySeconds (5), got 60'],
    ['url expiry beyond the API limit', `api: { urlExpirySeconds: 604801 }\n${folder}`, 'config: api.urlExpirySeconds: expected an integer from 1 to 604800, got 604801'],
    ['http to a remote API', `api: { baseUrl: "http://api.example.com" }\n${folder}`, 'config: api.baseUrl: expected an https:// URL (http:// is allowed only for a loopback host such as 127.0.0.1), got "http://api.example.com"'],
    ['another scheme', `api: { baseUrl: "ftp://127.0.0.1" }\n${folder}`, 'config: api.baseUrl: expected an https:// URL, got "ftp://127.0.0.1"'],
    ['credentials in a URL', `api: { baseUrl: "https://me:pw@platform.cryo-mix.com" }\n${folder}`, 'config: api.baseUrl: expected a URL without user:password@, got "https://me:***@platform.cryo-mix.com"'],
    ['http upload origin to a remote host', `api: { uploadOrigins: ["http://storage.googleapis.com"] }\n${folder}`, 'config: api.uploadOrigins[0]: expected an https:// URL (http:// is allowed only for a loopback host such as 127.0.0.1), got "http://storage.googleapis.com"'],
    ['no upload origins', `api: { uploadOrigins: [] }\n${folder}`, 'config: api.uploadOrigins: expected at least one URL: signed upload URLs must start with one, got an empty list'],
    ['origin with a path', `api: { origin: "https://studio.example.com/x" }\n${folder}`, 'config: api.origin: expected an origin like https://studio.example.com (scheme and host, no path), got "https://studio.example.com/x"'],
    ['moveTo missing', `${folder}    afterUpload: move\n`, 'config: folders[0].moveTo: required when afterUpload is move'],
    ['moveTo without move', `${folder}    moveTo: /srv/done\n`, 'config: folders[0].moveTo: only used when afterUpload is move (it is keep): remove it or set afterUpload: move'],
    ['mastering setting name', `${folder}    mastering:\n      settings: { meqq: 5 }\n`, 'config: folders[0].mastering.settings.meqq: unknown key (did you mean "meq"?)'],
    ['mastering setting out of range', `${folder}    mastering:\n      settings: { mca: 6 }\n`, 'config: folders[0].mastering.settings.mca: expected a number from -5 to 5, got 6'],
    ['meq has its own range', `${folder}    mastering:\n      settings: { meq: -1 }\n`, 'config: folders[0].mastering.settings.meq: expected a number from 0 to 10, got -1'],
    ['an empty mastering section', `${folder}    mastering:\n`, 'config: folders[0].mastering: expected a mapping (mastering: {} for the default settings), got null'],
    ['mastering key', `${folder}    mastering: { outputdir: /srv/m }\n`, 'config: folders[0].mastering.outputdir: unknown key (did you mean "outputDir"?)'],
    ['mastering file name', `${folder}    mastering:\n      files: [Master.wav]\n`, 'config: folders[0].mastering.files[0]: expected one of FinalMaster.wav, FinalMaster.mp3, MasteringReport.json, OriginalMix.mp3, got "Master.wav"'],
    ['log level', `${folder}log: { level: verbose }\n`, 'config: log.level: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
    ['both state stores', `state:\n  database: /var/lib/x.db\n  postgres: { url: "postgres://cryomix@db:5432/cryomix" }\n${folder}`, 'config: state.postgres: state.database and state.postgres exclude each other: keep state.postgres for a queue shared by several machines, state.database for one'],
    ['a password in the postgres URL', `state:\n  postgres: { url: "postgres://cryomix:secret@db:5432/cryomix" }\n${folder}    share: exports\n`, 'config: state.postgres.url: expected a URL without a password (set PGPASSWORD, a pgpass file or the credential cryomix-postgres-password), got "postgres://cryomix:***@db:5432/cryomix"'],
    ['another scheme for postgres', `state:\n  postgres: { url: "mysql://cryomix@db/cryomix" }\n${folder}    share: exports\n`, 'config: state.postgres.url: expected a postgres:// URL, got "mysql://cryomix@db/cryomix"'],
    ['no database in the postgres URL', `state:\n  postgres: { url: "postgres://cryomix@db:5432" }\n${folder}    share: exports\n`, 'config: state.postgres.url: expected a URL with a user, a host and a database, such as postgres://cryomix@db.studio.lan:5432/cryomix, got "postgres://cryomix@db:5432"'],
    ['a folder without a share in a shared queue', `state:\n  postgres: { url: "postgres://cryomix@db:5432/cryomix" }\n${folder}`, 'config: folders[0].share: required with state.postgres: the name every machine gives this folder, such as exports'],
    ['one share for two folders', `state:\n  postgres: { url: "postgres://cryomix@db:5432/cryomix" }\nfolders:\n  - { path: /srv/a, share: mixes }\n  - { path: /srv/b, share: mixes }\n`, 'config: folders[1].share: already the share of folders[0]: each folder needs its own name'],
    ['a share name with a slash', `${folder}    share: a/b\n`, 'config: folders[0].share: expected a name of letters, digits, ".", "_" or "-", such as exports, got "a/b"'],
    ['listen address', `${folder}http: { listen: "9464" }\n`, 'config: http.listen: expected host:port such as 127.0.0.1:9464, got "9464"'],
    ['a listener beyond loopback without a token', `${folder}http: { listen: "0.0.0.0:9464" }\n`, 'config: http.token: required when http.listen is not a loopback address (0.0.0.0); set a long random token, or listen on 127.0.0.1'],
    ['a summary interval below zero', `${folder}log: { summaryMinutes: -1 }\n`, 'config: log.summaryMinutes: expected a number of 0 or more, got -1'],
    ['a path starting with ~', 'folders:\n  - path: ~/exports\n', 'config: folders[0].path: expected a path not starting with ~ (it is not expanded: write the full path), got "~/exports"'],
    ['no folders at all', 'log: { level: info }\n', 'config: folders: missing, expected a list of folders to watch'],
    ['an empty folder list', 'folders: []\n', 'config: folders: expected at least one folder to watch, got an empty list'],
    ['a folder without a path', 'folders:\n  - recursive: false\n', 'config: folders[0].path: missing, expected a path'],
    ['a section that is not a mapping', `uploads: 3\n${folder}`, 'config: uploads: expected a mapping, got 3'],
    ['the whole file is not a mapping', '- /srv/exports\n', 'config: expected a mapping, got a list'],
  ])('%s', (_, yaml, message) => {
    expect(problem(yaml)).toBe(message);
  });

  it('never echoes the http token', () => {
    expect(problem(`${folder}http: { listen: "127.0.0.1:9464", token: 12345678 }\n`)).toBe(
      'config: http.token: expected a non-empty token, got (not shown: secret)',
    );
  });

  it('reports an empty file as missing folders', () => {
    expect(problem('')).toBe('config: folders: missing, expected a list of folders to watch');
  });
});
