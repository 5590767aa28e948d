import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, linkSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../src/report/jobView.js';
import { inspectFile } from '../../src/watch/sniff.js';
import { chunk, fmtChunk, mp3File, pcmWav, wav } from '../helpers/audio.js';
import { createWorkspace, listJobs, useDaemons, waitUntil } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, report, secretLeaks, type Expected } from './harness.js';

/**
 * Scenario 7: a corpus of awkward names and awkward files, each of which
 * must end in its documented state (README "Which files are uploaded",
 * "States") with a readable reason, while the daemon stays up. The corpus is
 * laid out twice under one daemon: in a folder filled before it starts (the
 * startup walk sees it) and in one filled while it runs (the watcher sees
 * it), because the two paths discover files differently.
 */

const tempDir = useTempDir('cryomix-chaos-badinput-');
const { startSandbox, startDaemon } = useDaemons();

const MAX_BYTES = 2_000_000;
const SETTLE_TIMEOUT_MS = 30_000;

type Outcome =
  /** Uploaded: a row `done` with these bytes stored. */
  | { state: 'done' }
  /** Two names for the same bytes in one folder: both `done`, one stored, the other a duplicateOf it. */
  | { state: 'duplicate'; of: string }
  | { state: 'rejected'; reason: RegExp }
  /**
   * Stays settling, nothing uploaded: a WAV header that disagrees with the
   * length may still be patched by its DAW. After ten unchanged minutes it is
   * rejected, by design, with the sniffer's reason (`reason`).
   */
  | { state: 'waiting'; reason: RegExp }
  /** A symlink, not followed: no row (or a rejection naming the link), its target never uploaded. */
  | { state: 'absent' }
  /** A name that is not valid UTF-8: uploaded, or rejected saying why — never silently skipped. */
  | { state: 'visible' };

interface Entry {
  label: string;
  /** What the daemon reports as the path (for a non-UTF-8 name: the lossy decoding Node gives). */
  path: string;
  outcome: Outcome;
  /** The bytes behind the name, when they must (or must not) reach storage. */
  bytes?: Buffer;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A WAV whose data is a hole: the file system stores almost nothing, reads return zeros. */
function sparseWav(path: string, size: number): Buffer {
  const header = wav([fmtChunk(), chunk('data', Buffer.alloc(0), size - 44)], { riffSize: size - 8 });
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header, 0, header.length, 0);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  return Buffer.concat([header, Buffer.alloc(size - header.length)]);
}

/** Lays the corpus out in `dir`; `outside` is a directory the daemon does not watch. */
function buildCorpus(dir: string, outside: string): Entry[] {
  const entries: Entry[] = [];
  const file = (label: string, name: string, bytes: Buffer, outcome: Outcome) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    entries.push({ label, path, outcome, bytes });
    return path;
  };

  // Links first: by the time the plain files have settled, their events are long processed.
  const secret = join(outside, `secret ${Math.random().toString(36).slice(2)}.wav`);
  const secretBytes = pcmWav(30_000);
  writeFileSync(secret, secretBytes);
  symlinkSync(secret, join(dir, 'link to outside.wav'));
  entries.push({ label: 'symlink pointing outside the folder', path: join(dir, 'link to outside.wav'), outcome: { state: 'absent' }, bytes: secretBytes });
  symlinkSync('loop.wav', join(dir, 'loop.wav'));
  entries.push({ label: 'symlink loop (to itself)', path: join(dir, 'loop.wav'), outcome: { state: 'absent' } });
  symlinkSync('ping.wav', join(dir, 'pong.wav'));
  symlinkSync('pong.wav', join(dir, 'ping.wav'));
  entries.push({ label: 'symlink loop (two links)', path: join(dir, 'ping.wav'), outcome: { state: 'absent' } });
  entries.push({ label: 'symlink loop (two links)', path: join(dir, 'pong.wav'), outcome: { state: 'absent' } });
  symlinkSync('.', join(dir, 'loop dir'));
  entries.push({ label: 'directory symlink loop', path: join(dir, 'loop dir', 'spaces  in  name .wav'), outcome: { state: 'absent' } });

  file('name with spaces', 'spaces  in  name .wav', pcmWav(20_000), { state: 'done' });
  file('name with quotes', `it's "the final" \`mix\`.wav`, pcmWav(21_000), { state: 'done' });
  file('name with a newline', 'line\nbreak.wav', pcmWav(22_000), { state: 'done' });
  file('NFC name', 'café déjà.wav'.normalize('NFC'), pcmWav(23_000), { state: 'done' });
  file('NFD name (same visible name)', 'café déjà.wav'.normalize('NFD'), pcmWav(24_000), { state: 'done' });
  // 125 two-byte characters + "x.wav": 255 bytes, the ext4/NTFS limit, but only 130 UTF-16 units.
  const long = `${'é'.repeat(125)}x.wav`;
  expect(Buffer.byteLength(long)).toBe(255);
  file('255-byte name', long, pcmWav(25_000), { state: 'done' });

  // "bad \xff\xfe name.wav": not UTF-8; Node's string APIs see "bad \uFFFD\uFFFD name.wav".
  const rawName = Buffer.concat([Buffer.from('bad '), Buffer.from([0xff, 0xfe]), Buffer.from(' name.wav')]);
  const rawBytes = pcmWav(26_000);
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), rawName]), rawBytes);
  entries.push({ label: 'invalid UTF-8 name', path: join(dir, rawName.toString('utf8')), outcome: { state: 'visible' }, bytes: rawBytes });

  const original = file('hard link target', 'hard link original.wav', pcmWav(27_000), { state: 'duplicate', of: join(dir, 'hard link copy.wav') });
  linkSync(original, join(dir, 'hard link copy.wav'));
  entries.push({ label: 'hard link to a WAV in the folder', path: join(dir, 'hard link copy.wav'), outcome: { state: 'duplicate', of: original }, bytes: readFileSync(original) });

  const sparse = join(dir, 'sparse.wav');
  entries.push({ label: 'sparse WAV', path: sparse, outcome: { state: 'done' }, bytes: sparseWav(sparse, 1_500_000) });
  // Content is judged before size: an empty file is a DAW that has not written its header yet, not a small mix.
  file('zero-byte .wav', 'empty.wav', Buffer.alloc(0), { state: 'waiting', reason: /the file has 0 bytes, too few for a WAV header/ });
  file('truncated WAV (header promises more data)', 'truncated.wav', wav([fmtChunk(), chunk('data', pcmWav(50_000).subarray(44), 200_000)], { riffSize: 4 + 24 + 8 + 200_000 }), {
    state: 'waiting',
    reason: /WAV header says 44 \+ 200,000 data bytes but the file has 50,044 bytes/,
  });
  file('MP3 content named .wav', 'really an mp3.wav', mp3File(30_000), { state: 'rejected', reason: /named \.wav but its content is MP3, not RIFF\/WAVE/ });
  const huge = join(dir, 'too big.wav');
  sparseWav(huge, MAX_BYTES + 500_000);
  entries.push({ label: 'over uploads.maxBytes', path: huge, outcome: { state: 'rejected', reason: new RegExp(`too large: ${MAX_BYTES + 500_000} bytes, the maximum is ${MAX_BYTES} \\(uploads.maxBytes\\)`) } });
  return entries;
}

describe('chaos 7: bad input corpus', () => {
  it('gives every odd name and odd file its documented state and reason, and the daemon stays up', async () => {
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const dir = tempDir();
    const workspace = createWorkspace(dir, sandbox, { apiKey: CANARY_KEY, uploads: { maxBytes: MAX_BYTES } });
    const early = join(dir, 'filled before start');
    const outside = join(dir, 'outside');
    mkdirSync(early);
    mkdirSync(outside);
    // A second watched folder, same settings: its corpus is found by the startup walk, the inbox's by the watcher.
    const config = JSON.parse(readFileSync(workspace.configFile, 'utf8')) as { folders: Record<string, unknown>[] };
    config.folders.push({ ...config.folders[0], path: early });
    writeFileSync(workspace.configFile, JSON.stringify(config, null, 2));

    const corpus = buildCorpus(early, outside);
    const daemon = startDaemon(workspace);
    await daemon.ready();
    corpus.push(...buildCorpus(workspace.inbox, outside));

    // A non-UTF-8 name may be shown lossily ("\uFFFD") or escaped: it is found by the readable parts of its name.
    const rowOf = (jobs: JobView[], path: string) =>
      jobs.find((job) => job.path === path) ??
      (path.includes('\uFFFD') ? jobs.find((job) => job.path.startsWith(path.slice(0, path.indexOf('\uFFFD'))) && job.path.endsWith(' name.wav')) : undefined);
    const settled = (jobs: JobView[], entry: Entry): boolean => {
      const row = rowOf(jobs, entry.path);
      switch (entry.outcome.state) {
        case 'done':
        case 'duplicate':
          return row?.state === 'done';
        case 'rejected':
          return row?.state === 'rejected';
        case 'waiting':
          return row?.state === 'waiting';
        case 'absent':
          return true;
        case 'visible':
          return row !== undefined && ['done', 'rejected'].includes(row.state);
      }
    };
    // The non-UTF-8 name is left out of the wait: whether it is handled at all is what its assertion checks.
    const awaited = corpus.filter((entry) => entry.outcome.state !== 'visible');
    await waitUntil(async () => {
      const jobs = await listJobs(workspace);
      return awaited.every((entry) => settled(jobs, entry));
    }, SETTLE_TIMEOUT_MS, async () => JSON.stringify((await listJobs(workspace)).map((job) => [job.path, job.state, job.error])));
    // Give the stragglers (the non-UTF-8 name, a dedupe racing its original) the same settle time once more.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const jobs = await listJobs(workspace);
    const objects = sandbox.objects();
    const storedShas = objects.map((object) => object.sha256);

    // Every shortfall is collected, so one run names all of them (and the figures row can say FAIL).
    const problems: string[] = [];
    const check = (ok: boolean, problem: string) => {
      if (!ok) problems.push(problem);
    };
    for (const entry of corpus) {
      const row = rowOf(jobs, entry.path);
      const what = `${entry.label} ${JSON.stringify(entry.path)} (row: ${row ? `${row.state}, error ${JSON.stringify(row.error)}, duplicateOf ${JSON.stringify(row.duplicateOf)}` : 'none'})`;
      switch (entry.outcome.state) {
        case 'done':
          check(row?.state === 'done' && row.sha256 === sha256(entry.bytes!) && row.duplicateOf === null, `${what}: expected done with its own bytes stored`);
          break;
        case 'duplicate': {
          // Either of the two names may be the one sent; the other must point at it.
          const pair = [row, rowOf(jobs, entry.outcome.of)];
          const sent = pair.filter((r) => r?.state === 'done' && r.duplicateOf === null);
          const deduped = pair.filter((r) => r?.state === 'done' && r.duplicateOf !== null && r.duplicateOf === sent[0]?.path);
          check(sent.length === 1 && deduped.length === 1, `${what}: expected one of the hard-linked names uploaded and the other done as its duplicate`);
          break;
        }
        case 'rejected':
          check(row?.state === 'rejected' && entry.outcome.reason.test(row.error ?? ''), `${what}: expected rejected, error matching ${entry.outcome.reason}`);
          break;
        case 'waiting': {
          check(row?.state === 'waiting', `${what}: expected still waiting`);
          check(!sandbox.requests().some((r) => r.sessionId === row?.sessionId), `${what}: expected no API call for it`);
          // Rejected only after ten unchanged minutes, by design; the reason it will then carry is the sniffer's verdict.
          const inspection = await inspectFile(entry.path, row?.size ?? 0);
          check(
            inspection.verdict === 'incomplete' && entry.outcome.reason.test(inspection.reason),
            `${what}: expected the sniffer to explain why with numbers (${entry.outcome.reason}), got ${JSON.stringify(inspection)}`,
          );
          break;
        }
        case 'absent':
          // Skipped, or rejected saying it is a link: either way never read through.
          check(row === undefined || (row.state === 'rejected' && /link/i.test(row.error ?? '')), `${what}: a symlink must not be followed`);
          if (entry.bytes) check(!storedShas.includes(sha256(entry.bytes)), `${what}: the link's target outside the folder was uploaded`);
          break;
        case 'visible':
          check(row !== undefined, `${what}: a file whose name is not UTF-8 must still show up, uploaded or rejected with a reason`);
          if (row) {
            check(
              row.state === 'done' ? row.sha256 === sha256(entry.bytes!) : row.state === 'rejected' && /UTF-8|name/.test(row.error ?? ''),
              `${what}: expected done with its bytes, or rejected naming the problem with its name`,
            );
          }
          break;
      }
    }
    // Every rejection in `list --json` is a sentence a studio engineer can act on.
    for (const job of jobs.filter((j) => j.state === 'rejected')) check(/^[a-z].{15,}/.test(job.error ?? ''), `${job.path}: rejected without a readable reason`);
    // Nothing under the directory loop, nothing outside the watched folders.
    for (const job of jobs.filter((j) => j.path.includes('loop dir') || j.path.startsWith(outside))) problems.push(`${job.path}: reached through a symlink`);

    // Still up after all that: never logged a fatal line, and answers a stop like a healthy daemon.
    for (const record of daemon.logs.filter((r) => (r.level ?? 0) >= 60)) problems.push(`fatal log line: ${String(record.msg)}`);
    const exit = await daemon.stop('SIGTERM');
    check(exit.code === 0 && exit.signal === null, `the daemon did not stop cleanly: ${JSON.stringify(exit)}`);

    const uploadable = corpus.filter((entry) => ['done', 'duplicate'].includes(entry.outcome.state));
    const expected: Expected[] = uploadable.map((entry) => ({ path: entry.path, sha256: sha256(entry.bytes!) }));
    const result = audit(workspace, sandbox, expected);
    // Bytes that must never have been sent: a symlink's target outside the folders.
    const leakedOutside = corpus.filter((entry) => entry.outcome.state === 'absent' && entry.bytes && storedShas.includes(sha256(entry.bytes))).length;
    // Hard-linked names are the same bytes in the same folder: stored once, whichever name went first.
    // A name the daemon neither uploaded nor reported is a file lost without a trace.
    const unnamed = corpus.filter((entry) => entry.outcome.state === 'visible');
    const silentlySkipped = unnamed.filter((entry) => rowOf(jobs, entry.path) === undefined).length;
    const linkedShas = new Set(corpus.filter((entry) => entry.outcome.state === 'duplicate').map((entry) => sha256(entry.bytes!)));
    const sentTwice = [...linkedShas].filter((sha) => storedShas.filter((stored) => stored === sha).length > 1).length;
    const tally: Record<string, number> = {};
    for (const job of jobs) tally[job.state] = (tally[job.state] ?? 0) + 1;
    const leaks = secretLeaks([daemon.output], workspace);
    report({
      checksPassed: problems.length === 0 && result.maxSessionIdsPerVersion <= 1 && result.integrity === 'ok' && leaks.length === 0,
      scenario: 'bad input corpus',
      rounds: 1,
      files: corpus.length,
      lost: result.lost + silentlySkipped,
      duplicated: result.duplicated + sentTwice,
      corrupted: result.corrupted + leakedOutside,
      extra: {
        states: Object.entries(tally).sort().map(([state, n]) => `${state}:${n}`).join(','),
        nonUtf8NamesSilentlySkipped: `${silentlySkipped}/${unnamed.length}`,
        symlinkTargetsUploaded: leakedOutside,
        secretLeaks: leaks.length,
      },
    });
    expect(problems).toEqual([]);
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, integrity: 'ok' });
    expect(leakedOutside).toBe(0);
    expect(sentTwice).toBe(0);
    expect(leaks).toEqual([]);
  });
});
