import { closeSync, copyFileSync, linkSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Throttle } from '../../src/transfer/throttle.js';
import { parseConfig } from '../../src/config/index.js';
import { Scheduler } from '../../src/pipeline/scheduler.js';
import { uploadNextJob } from '../../src/pipeline/upload.js';
import { createUploadContext } from '../../src/pipeline/uploadContext.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { openDatabase } from '../../src/store/db.js';
import { jobView, type JobView } from '../../src/report/jobView.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import type { Job } from '../../src/store/job.js';
import { FINAL_STATES } from '../../src/store/states.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, listJobs, useWorkspace, waitUntil } from '../helpers/daemon.js';
import { useSandbox } from '../helpers/servers.js';
import { useTempDir } from '../helpers/tempDir.js';
import { sandboxClient } from '../cryomix/sandboxClient.js';

/** Names of one mix's bytes in `dir`: the original, then in turn a hard link to the name before and a copy. */
function identicalFiles(dir: string, count: number, bytes: Buffer): string[] {
  mkdirSync(dir, { recursive: true });
  const paths = [join(dir, 'mix.wav')];
  writeFileSync(paths[0]!, bytes);
  for (let i = 1; i < count; i++) {
    const path = join(dir, i % 2 === 1 ? `mix hard link ${i}.wav` : `mix copy ${i}.wav`);
    (i % 2 === 1 ? linkSync : copyFileSync)(paths[i - 1]!, path);
    paths.push(path);
  }
  return paths;
}

/** What became of one set of identical files: exactly one may have been sent, the rest must be its duplicates. */
function outcome(rows: JobView[], sandbox: Sandbox): { states: string[]; sent: number; duplicatesOfTheSent: number } {
  const sessions = new Set(rows.map((row) => row.sessionId));
  const sentSessions = new Set(sandbox.objects().filter((object) => sessions.has(object.sessionId)).map((object) => object.sessionId));
  const [sent] = rows.filter((row) => sentSessions.has(row.sessionId));
  return {
    states: rows.map((row) => row.state),
    sent: sentSessions.size,
    duplicatesOfTheSent: rows.filter((row) => sent !== undefined && row.duplicateOf === sent.path).length,
  };
}

const allSentOnce = (count: number) => ({ states: Array(count).fill('done'), sent: 1, duplicatesOfTheSent: count - 1 });

const shuffled = <T>(items: T[]): T[] => items.map((item) => ({ item, key: Math.random() })).sort((a, b) => a.key - b.key).map(({ item }) => item);

describe('identical files ready at the same moment', () => {
  const sandbox = useSandbox();
  const tempDir = useTempDir('cryomix-twins-');

  /**
   * One round: `count` names of the same bytes become queued in a random
   * order with random gaps (0 to a few ms: within one tick, while another is
   * claimed, while another hashes its head or is mid-PUT), under the real
   * scheduler, uploader, SQLite store and sandbox.
   */
  async function round(count: number): Promise<{ order: string; outcome: ReturnType<typeof outcome> }> {
    const dir = tempDir();
    const folder = join(dir, 'in');
    const paths = identicalFiles(folder, count, pcmWav(300_000));
    const config = parseConfig(
      JSON.stringify({
        api: { baseUrl: sandbox.url, uploadOrigins: [sandbox.storageOrigin] },
        state: { database: join(dir, 'state.db') },
        uploads: { concurrency: 3, retry: { initialDelaySeconds: 0.02, maxDelaySeconds: 0.1 } },
        folders: [{ path: folder }],
      }),
      dir,
    );
    const db = openDatabase(config.state.database);
    const store = new SqliteJobStore(db);
    const logger = pino({ level: 'silent' });
    const context = createUploadContext({ config, store, api: sandboxClient(sandbox), logger }, { onStale: () => {}, onUnauthorized: () => {} }, { uploads: new Throttle(), downloads: new Throttle() });
    let failure: unknown;
    const scheduler = new Scheduler({
      store,
      logger,
      concurrency: config.uploads.concurrency,
      authRecheckMs: 60_000,
      pollMs: 20,
      upload: (signal, onClaimed) => uploadNextJob(context, signal, (job) => onClaimed(job.id)),
      step: () => Promise.resolve(),
      followUp: () => Promise.resolve(),
      keyAccepted: () => Promise.resolve(true),
      onFatal: (error) => {
        failure = error;
      },
    });
    const jobs: Job[] = [];
    for (const path of paths) {
      const { size, mtimeMs } = statSync(path);
      jobs.push(await store.createVersion({ folder, path, size, mtimeMs }));
    }
    const rows = () => Promise.all(jobs.map(async (job) => jobView(await store.get(job.id), store)));
    // What a failing round did, so that it can be told apart from the others: each file queued, then the gap after it.
    const steps: string[] = [];
    await scheduler.start();
    try {
      for (const job of shuffled(jobs)) {
        await store.transition(job.id, 'queued');
        scheduler.pump();
        const gap = Math.floor(Math.random() * 4);
        steps.push(`${basename(job.path)} +${gap} ms`);
        if (gap > 0) await sleep(gap);
      }
      let last: JobView[] = [];
      await waitUntil(async () => failure ?? (last = await rows()).every((row) => FINAL_STATES.includes(row.state)), 10_000, () => JSON.stringify(last));
    } finally {
      await scheduler.stop(1_000);
    }
    expect(failure).toBeUndefined();
    const result = { order: steps.join(', '), outcome: outcome(await rows(), sandbox) };
    db.close();
    return result;
  }

  it('are sent once, whatever order they are claimed in; the others end as its duplicates', async () => {
    const count = 4;
    for (let i = 0; i < 30; i++) {
      const { order, outcome: sent } = await round(count);
      expect(sent, `round ${i + 1}, queued as: ${order}`).toEqual(allSentOnce(count));
    }
  }, 120_000);
});

describe('identical files found when the daemon starts', () => {
  const { sandbox, tempDir, startDaemon } = useWorkspace();

  /** `bytes` as a DAW leaves them until the export ends: a placeholder header whose sizes are 0. */
  const unfinished = (bytes: Buffer) => Buffer.concat([bytes.subarray(0, 4), Buffer.alloc(4), bytes.subarray(8, 40), Buffer.alloc(4), bytes.subarray(44)]);
  const finish = (path: string, bytes: Buffer) => {
    const fd = openSync(path, 'r+');
    writeSync(fd, bytes, 0, 44, 0);
    closeSync(fd);
  };

  /**
   * Files found at startup whose exports end one after the other, the
   * newest row first, each while the first is still being sent (storage
   * holds its PUT for a while): the order in which a "lower id goes first"
   * rule sent them all. Then the PUT ends, or a restart cuts it short.
   */
  it('are sent once, in whatever order their exports end, also across a restart while one of them is sent', async () => {
    const count = 6;
    // The held PUT must not be taken for a stall: it is storage, not the uplink, that holds it.
    const workspace = createWorkspace(tempDir(), sandbox, { uploads: { stallTimeoutSeconds: 30 } });
    for (const [i, restart] of ([undefined, 'SIGKILL', 'SIGTERM'] as const).entries()) {
      const bytes = pcmWav(300_000);
      const paths = identicalFiles(join(workspace.inbox, `round ${i + 1}`), count, unfinished(bytes));
      // Newest row first, as `list` prints them.
      const rows = async () => (await listJobs(workspace)).filter((row) => paths.includes(row.path));
      const stateOf = async (path: string) => (await rows()).find((row) => row.path === path)?.state;
      sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 100_000, forMs: 5_000 });
      const earlier = sandbox.requests().length;
      const putInFlight = () => sandbox.requests().slice(earlier).some((request) => request.endpoint === 'put' && request.status === 0);
      let daemon = startDaemon(workspace);
      await daemon.ready();
      const finished = new Set<number>();
      for (const { path } of await waitUntil(async () => {
        const found = await rows();
        return found.length === count && found;
      })) {
        const { ino } = statSync(path);
        if (finished.has(ino)) continue;
        finish(path, bytes);
        // Decided: the first holds the bytes in its held PUT, the others wait for it (or, wrongly, are sent).
        await waitUntil(async () => (finished.size === 0 ? putInFlight() : ['retrying', 'done'].includes((await stateOf(path)) ?? '')));
        finished.add(ino);
      }
      if (restart) {
        await daemon.stop(restart);
        daemon = startDaemon(workspace);
      }
      await waitUntil(async () => (await rows()).every((row) => FINAL_STATES.includes(row.state)), 30_000, async () => JSON.stringify(await rows()));
      await daemon.stop('SIGTERM');
      expect(outcome(await rows(), sandbox), `round ${i + 1}${restart ? `, restarted with ${restart}` : ''}`).toEqual(allSentOnce(count));
    }
  }, 120_000);
});
