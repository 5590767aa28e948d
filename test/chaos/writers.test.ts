import { createCipheriv, createHash } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { chunk, fmtChunk, id3Tag, wav } from '../helpers/audio.js';
import { createWorkspace, listJobs, useDaemons, waitUntil, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, readJobRows, report, scaled, secretLeaks, type Expected } from './harness.js';
import { between, chaosSeed, seededRandom } from './random.js';

/**
 * Scenario 3: files that are still being written. N writers of five kinds
 * write into one daemon's inbox at the same time; not one byte may be sent
 * before its writer has finished, and every file must end `done` with its
 * final bytes.
 *
 * What the daemon can and cannot know: it sees size, mtime, the WAV header
 * and filesystem events. A placeholder WAV header (DAW) or a junk name
 * (`.part`, `.tmp`) says "not finished" however long the writer pauses. A
 * Samba client that pre-allocated the full size and wrote a correct header
 * first, or an MP3 encoder appending frames, leaves nothing to tell a long
 * pause from the end: after settleSeconds of silence such a file IS finished
 * as far as anyone can see. So those writers pause well under settleSeconds,
 * as real SMB clients and encoders do while they stream; a longer pause
 * there would be a test of the writer, not of the daemon.
 */

const tempDir = useTempDir('cryomix-chaos-writers-');
const { startSandbox, startDaemon } = useDaemons();

const N = scaled(25, 500);
const SETTLE_SECONDS = 1;
const SETTLE_MS = SETTLE_SECONDS * 1000;
const KB = 1024;
const FILE_BYTES = { min: 100 * KB, max: 2048 * KB };
/** Well under settleSeconds: the 750 ms margin absorbs event-loop and thread-pool jitter on a busy 2-core box. */
const SHORT_PAUSE_MS = { min: 10, max: 250 };
/** Well over settleSeconds, so the daemon does see the file unchanged and must find another reason to wait. */
const LONG_PAUSE_MS = { min: 1500, max: 2500 };
/** Writers start spread over this window, so that in the full run ~50 write at any moment rather than 500 at once. */
const START_WINDOW_MS = scaled(2000, 90_000);

const KINDS = ['daw', 'samba', 'temp-rename', 'network-copy', 'mp3-bursts'] as const;
type Kind = (typeof KINDS)[number];

type Step =
  | { op: 'write'; at: number; bytes: Buffer }
  /** Extend to the full size without writing data (sparse), as SMB clients pre-allocate. */
  | { op: 'truncate'; size: number }
  | { op: 'pause'; ms: number; long: boolean };

interface Plan {
  kind: Kind;
  /** The name the file ends up with, the only one the daemon may upload. */
  path: string;
  /** Where the bytes are written; differs from `path` for copy-to-temp-then-rename. */
  writePath: string;
  final: Buffer;
  steps: Step[];
}

interface Written {
  kind: Kind;
  path: string;
  sha256: string;
  size: number;
  /** Date.now() once the last byte was written and the file closed (and renamed). */
  finishedAt: number;
  longPauses: number;
  /** Longest time the watched file stood unchanged after a pause meant to be short: must stay under settleSeconds. */
  maxShortQuietMs: number;
}

/** Deterministic audio-like noise (AES-CTR keystream), so CHAOS_SEED replays the exact bytes and no two files dedupe. */
function noise(seed: number, stream: number, length: number): Buffer {
  const key = createHash('sha256').update(`writers:${seed}:${stream}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function shortPause(random: () => number): Step {
  return { op: 'pause', ms: between(random, SHORT_PAUSE_MS.min, SHORT_PAUSE_MS.max), long: false };
}

function longPause(random: () => number): Step {
  return { op: 'pause', ms: between(random, LONG_PAUSE_MS.min, LONG_PAUSE_MS.max), long: true };
}

/** `final[from, to)` as writes of minChunk..maxChunk bytes, each followed by a short pause. */
function frontToBack(random: () => number, final: Buffer, from: number, to: number, minChunk: number, maxChunk: number, multipleOf = 1): Step[] {
  const steps: Step[] = [];
  for (let at = from; at < to; ) {
    const length = Math.min(to - at, Math.max(multipleOf, Math.floor(between(random, minChunk, maxChunk) / multipleOf) * multipleOf));
    steps.push({ op: 'write', at, bytes: final.subarray(at, at + length) }, shortPause(random));
    at += length;
  }
  return steps;
}

/** A 16-bit stereo PCM WAV, sometimes with a JUNK chunk before `data` and a LIST chunk after it, as DAWs write them. */
function wavBytes(random: () => number, seed: number, index: number, size: number): Buffer {
  const before = random() < 0.5 ? [chunk('JUNK', Buffer.alloc(28))] : [];
  const after = random() < 0.5 ? [chunk('LIST', Buffer.from('INFOISFT\u000e\u0000\u0000\u0000cryomix-chaos\u0000', 'latin1'))] : [];
  const audioBytes = Math.max(4, size - 64) & ~3;
  return wav([fmtChunk(), ...before, chunk('data', noise(seed, index, audioBytes)), ...after]);
}

function dataChunkAt(file: Buffer): number {
  // The bodies before `data` (fmt, JUNK) hold no such bytes, so the first match is the chunk header.
  return file.indexOf('data', 12, 'latin1');
}

/**
 * DAW bounce: a header whose RIFF and data sizes are placeholders (0 or
 * 0xFFFFFFFF), audio appended in bursts with at least one pause longer than
 * settleSeconds, the header patched last (sometimes after another long pause).
 */
function dawPlan(random: () => number, seed: number, index: number, size: number): Omit<Plan, 'path' | 'writePath'> {
  const final = wavBytes(random, seed, index, size);
  const dataAt = dataChunkAt(final);
  const headerEnd = dataAt + 8;
  const placeholder = () => (random() < 0.5 ? 0 : 0xffff_ffff);
  const header = Buffer.from(final.subarray(0, headerEnd));
  header.writeUInt32LE(placeholder(), 4);
  header.writeUInt32LE(placeholder(), dataAt + 4);

  const bursts = between(random, 2, 4);
  const cuts = Array.from({ length: bursts - 1 }, () => between(random, headerEnd + 1, final.length - 1)).sort((a, b) => a - b);
  const bounds = [headerEnd, ...cuts, final.length];
  const longAt = between(random, 1, bursts - 1);
  const steps: Step[] = [{ op: 'write', at: 0, bytes: header }, shortPause(random)];
  for (let b = 0; b < bursts; b++) {
    if (b > 0) steps.push(b === longAt || random() < 0.5 ? longPause(random) : shortPause(random));
    steps.push(...frontToBack(random, final, bounds[b]!, bounds[b + 1]!, 16 * KB, 96 * KB));
  }
  steps.push(random() < 0.5 ? longPause(random) : shortPause(random));
  steps.push({ op: 'write', at: 4, bytes: final.subarray(4, 8) }, { op: 'write', at: dataAt + 4, bytes: final.subarray(dataAt + 4, dataAt + 8) });
  return { kind: 'daw', final, steps };
}

/** Samba: ftruncate to the full size first (correct length from the start), then filled front to back without long pauses. */
function sambaPlan(random: () => number, seed: number, index: number, size: number): Omit<Plan, 'path' | 'writePath'> {
  const final = wavBytes(random, seed, index, size);
  return { kind: 'samba', final, steps: [{ op: 'truncate', size: final.length }, ...frontToBack(random, final, 0, final.length, 16 * KB, 64 * KB)] };
}

/** A browser or rsync-style copy: slow writes (long pauses too) under a junk name, then one rename to the real name. */
function tempRenamePlan(random: () => number, seed: number, index: number, size: number): Omit<Plan, 'path' | 'writePath'> {
  const final = wavBytes(random, seed, index, size);
  const steps = frontToBack(random, final, 0, final.length, 32 * KB, 256 * KB).map((step) => (step.op === 'pause' && random() < 0.15 ? longPause(random) : step));
  return { kind: 'temp-rename', final, steps };
}

/** A complete WAV (correct header from the first byte) copied front to back in small pieces over a slow link. */
function networkCopyPlan(random: () => number, seed: number, index: number, size: number): Omit<Plan, 'path' | 'writePath'> {
  const final = wavBytes(random, seed, index, size);
  return { kind: 'network-copy', final, steps: frontToBack(random, final, 0, final.length, 8 * KB, 48 * KB) };
}

/** An encoder: ID3 tag first, then MPEG frames appended in bursts of whole frames. */
function mp3Plan(random: () => number, seed: number, index: number, size: number): Omit<Plan, 'path' | 'writePath'> {
  const tag = id3Tag(between(random, 64, 4096));
  const frameBytes = 417;
  const frames = noise(seed, index, Math.ceil(size / frameBytes) * frameBytes);
  for (let at = 0; at < frames.length; at += frameBytes) frames.set([0xff, 0xfb, 0x90, 0x64], at);
  const final = Buffer.concat([tag, frames]);
  const steps: Step[] = [{ op: 'write', at: 0, bytes: final.subarray(0, tag.length) }, shortPause(random)];
  steps.push(...frontToBack(random, final, tag.length, final.length, 8 * KB, 64 * KB, frameBytes));
  return { kind: 'mp3-bursts', final, steps };
}

function plan(seed: number, index: number, inbox: string): Plan {
  // One generator per writer, so interleaving between writers cannot change what a seed replays.
  const random = seededRandom((seed ^ Math.imul(index + 1, 0x9e37_79b1)) >>> 0);
  const kind = KINDS[index % KINDS.length]!;
  const size = between(random, FILE_BYTES.min, FILE_BYTES.max);
  const name = `${kind} ${index}.${kind === 'mp3-bursts' ? 'mp3' : 'wav'}`;
  const path = join(inbox, name);
  switch (kind) {
    case 'daw':
      return { path, writePath: path, ...dawPlan(random, seed, index, size) };
    case 'samba':
      return { path, writePath: path, ...sambaPlan(random, seed, index, size) };
    case 'temp-rename':
      return { path, writePath: join(inbox, random() < 0.5 ? `${name}.part` : `.${name}.tmp`), ...tempRenamePlan(random, seed, index, size) };
    case 'network-copy':
      return { path, writePath: path, ...networkCopyPlan(random, seed, index, size) };
    case 'mp3-bursts':
      return { path, writePath: path, ...mp3Plan(random, seed, index, size) };
  }
}

async function runWriter(seed: number, index: number, inbox: string, startAfterMs: number): Promise<Written> {
  await sleep(startAfterMs);
  const { kind, path, writePath, final, steps } = plan(seed, index, inbox);
  const watched = writePath === path;
  let longPauses = 0;
  let maxShortQuietMs = 0;
  let lastChange = performance.now();
  let afterLongPause = false;
  const changed = () => {
    const now = performance.now();
    if (watched && !afterLongPause) maxShortQuietMs = Math.max(maxShortQuietMs, now - lastChange);
    lastChange = now;
    afterLongPause = false;
  };
  const file = await open(writePath, 'w');
  try {
    for (const step of steps) {
      if (step.op === 'pause') {
        await sleep(step.ms);
        if (step.long) {
          longPauses++;
          afterLongPause = true;
        }
      } else if (step.op === 'truncate') {
        await file.truncate(step.size);
        changed();
      } else {
        await file.write(step.bytes, 0, step.bytes.length, step.at);
        changed();
      }
    }
  } finally {
    await file.close();
  }
  if (!watched) await rename(writePath, path);
  return { kind, path, sha256: createHash('sha256').update(final).digest('hex'), size: final.length, finishedAt: Date.now(), longPauses, maxShortQuietMs };
}

/**
 * When each Session-Id first showed up at the sandbox (API call or PUT). The
 * sandbox keeps no timestamps, so this polls; a request is dated at most one
 * poll late, which can only hide a premature request that came within ~25 ms
 * of the writer's last write, never invent one.
 */
function watchRequests(sandbox: Sandbox): { firstSeen: Map<string, number>; stop(): void } {
  const firstSeen = new Map<string, number>();
  let seen = 0;
  const poll = () => {
    const requests = sandbox.requests();
    const now = Date.now();
    for (; seen < requests.length; seen++) {
      const id = requests[seen]!.sessionId;
      if (id !== null && !firstSeen.has(id)) firstSeen.set(id, now);
    }
  };
  const timer = setInterval(poll, 25);
  return {
    firstSeen,
    stop: () => {
      clearInterval(timer);
      poll();
    },
  };
}

describe('chaos 3: files that are still being written', () => {
  it(`uploads none of ${N} concurrent writers' files before they are finished, and every one once they are`, async () => {
    const seed = chaosSeed();
    console.log(`chaos writers: seed ${seed} (CHAOS_SEED=${seed} replays it)`);
    const random = seededRandom(seed);
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, folder: { settleSeconds: SETTLE_SECONDS } });
    const daemon = startDaemon(workspace);
    await daemon.ready();

    const requests = watchRequests(sandbox);
    const starts = Array.from({ length: N }, () => between(random, 0, START_WINDOW_MS));
    // Stopped whatever the writers do: a failed writer must not leave the poll running after the test.
    const written = await Promise.all(starts.map((startAfterMs, index) => runWriter(seed, index, workspace.inbox, startAfterMs))).finally(() => requests.stop());

    // The DB is polled directly: `list` is a blocking child process and would starve the in-process sandbox.
    const byPath = new Map(written.map((file) => [file.path, file]));
    const describeUnfinished = () => JSON.stringify(readJobRows(workspace).filter((row) => row.current === 1 && row.state !== 'done').slice(0, 5));
    await waitUntil(
      () => readJobRows(workspace).filter((row) => row.current === 1 && row.state === 'done' && byPath.has(row.path)).length === N,
      scaled(60_000, 20 * 60_000),
      describeUnfinished,
    );
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const rows = readJobRows(workspace);
    const pathOfSession = new Map(rows.map((row) => [row.session_id, row.path]));
    const premature = new Map<string, string[]>();
    const flag = (path: string, why: string) => premature.set(path, [...(premature.get(path) ?? []), why]);
    const strays: string[] = [];
    for (const object of sandbox.objects()) {
      const path = pathOfSession.get(object.sessionId);
      const file = path === undefined ? undefined : byPath.get(path);
      if (!file) strays.push(`object ${object.objectName} of session ${object.sessionId} (${path ?? 'no row'})`);
      else if (object.sha256 !== file.sha256) flag(file.path, `stored ${object.size} bytes that are not its final ${file.size} (sha256 ${object.sha256.slice(0, 12)})`);
    }
    for (const [sessionId, seenAt] of requests.firstSeen) {
      const path = pathOfSession.get(sessionId);
      const file = path === undefined ? undefined : byPath.get(path);
      if (!file) strays.push(`request of session ${sessionId} (${path ?? 'no row'})`);
      else if (seenAt < file.finishedAt) flag(file.path, `upload request ${file.finishedAt - seenAt} ms before the writer finished`);
    }

    const result = audit(workspace, sandbox, written.map((file): Expected => ({ path: file.path, sha256: file.sha256 })));
    const leaks = secretLeaks([daemon.output], workspace);
    const perKind = Object.fromEntries(
      KINDS.map((kind) => {
        const ofKind = written.filter((file) => file.kind === kind);
        return [kind, `${ofKind.filter((file) => premature.has(file.path)).length}/${ofKind.length}`];
      }),
    );
    const shortQuiet = written.map((file) => file.maxShortQuietMs);
    const listed = new Map((await listJobs(workspace)).map((job) => [job.path, job]));
    const wrong = written
      .filter((file) => listed.get(file.path)?.state !== 'done' || listed.get(file.path)?.sha256 !== file.sha256)
      .map((file) => `${file.path}: ${listed.get(file.path)?.state ?? 'missing'}`);
    const dawWithoutLongPause = written.filter((file) => file.kind === 'daw' && file.longPauses === 0);
    const tempRows = rows.filter((row) => !byPath.has(row.path)).map((row) => row.path);
    const checksPassed =
      premature.size === 0 && strays.length === 0 && dawWithoutLongPause.length === 0 && tempRows.length === 0 && wrong.length === 0 &&
      result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && result.integrity === 'ok' && leaks.length === 0;
    report({
      checksPassed,
      scenario: 'files still being written',
      rounds: 1,
      files: N,
      lost: result.lost,
      duplicated: result.duplicated,
      corrupted: result.corrupted,
      extra: {
        premature: `${premature.size}/${N}`,
        ...perKind,
        longPauses: written.reduce((sum, file) => sum + file.longPauses, 0),
        maxShortPauseMs: Math.round(Math.max(...shortQuiet)),
        strays: strays.length,
        secretLeaks: leaks.length,
        seed,
      },
    });

    const details = [...premature].map(([path, why]) => {
      const file = byPath.get(path)!;
      return `${basename(path)} (${file.kind}, longest short pause ${Math.round(file.maxShortQuietMs)} ms): ${why.join('; ')}`;
    });
    expect(details, `premature uploads (seed ${seed})`).toEqual([]);
    expect(strays, 'uploads of names no writer finished (temp files?)').toEqual([]);
    // The scenario's premise: DAW writers really left their file untouched for longer than settleSeconds.
    expect(dawWithoutLongPause).toEqual([]);
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(tempRows, 'rows for temp names').toEqual([]);
    expect(wrong).toEqual([]);
    expect(leaks).toEqual([]);
  }, scaled(120_000, 30 * 60_000));
});
