/*
 * 3. Startup on a big tree: N files already `done` in the DB and on disk,
 * plus 100 new ones. Time from spawn to "ready" and to the last new file
 * being queued (minus settleSeconds), against
 * `find DIR -printf '%s %T@\n'` over the same tree. Warm caches on both
 * sides: find runs once unmeasured, each daemon mode runs once unmeasured.
 * Then nothing old may have been re-uploaded (the sandbox's request log)
 * nor even touched (the daemon's transition log).
 *
 * The "done" history is not uploaded through the sandbox: rows are inserted
 * straight into the DB (migrated by the daemon itself first), each with the
 * size and mtime of its file as lstat reports them, which is what
 * src/pipeline/folder.ts `needsLook` and src/pipeline/version.ts
 * `sameVersion` compare.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { smallWav } from './lib/audio.mjs';
import { Daemon, Sandbox, ourCommand, runTimed } from './lib/proc.mjs';
import { absolute, info, relative } from './lib/report.mjs';
import { kbToMb, median } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'startup';
const NEW_FILES = 100;
const FILES_PER_DIR = 1000;
const SETTLE_SECONDS = 1;

function buildTree(root, count) {
  const old = [];
  const dirs = Math.ceil(count / FILES_PER_DIR);
  const content = smallWav(1044);
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `project-${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES_PER_DIR && old.length < count; f++) {
      const path = join(dir, `mix-${String(old.length).padStart(6, '0')}.wav`);
      writeFileSync(path, content);
      old.push(path);
    }
  }
  return { old, dirs };
}

/** Rows as the daemon would have left them after uploading each file. */
function seedDatabase(database, folder, paths) {
  const db = new Database(database);
  try {
    const insert = db.prepare(`
      INSERT INTO jobs (session_id, folder, path, size, mtime_ms, sha256, md5, state, current, attempts, bytes_sent, upload_folder, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, 'done', 1, 1, ?, ?, ?, ?)`);
    const now = Date.now();
    db.transaction(() => {
      for (const path of paths) {
        const { size, mtimeMs } = lstatSync(path);
        insert.run(randomUUID(), folder, path, size, mtimeMs, randomBytes(32).toString('hex'), randomBytes(16).toString('base64'), size, randomUUID(), now, now);
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

export async function run({ quick, work, log }) {
  const count = quick ? 20_000 : 100_000;
  const runsPerMode = 2; // the first warms the caches and is not counted
  const tree = join(work, 'tree');
  mkdirSync(tree, { recursive: true });
  const sandbox = await Sandbox.start();
  try {
    const workspaces = {
      inotify: createWorkspace(join(work, 'inotify'), sandbox, { inbox: tree, folder: { settleSeconds: SETTLE_SECONDS, polling: 'never' } }),
      polling: createWorkspace(join(work, 'polling'), sandbox, { inbox: tree, folder: { settleSeconds: SETTLE_SECONDS, polling: 'always' } }),
    };
    // The daemon creates and migrates its DB on an empty folder; then the tree and the history are made.
    const seed = join(work, 'seed.db');
    {
      const ws = workspaces.inotify;
      const daemon = Daemon.start(ws);
      await daemon.ready(60_000);
      await daemon.stop();
    }
    log(`writing ${count} files`);
    const { old, dirs } = buildTree(tree, count);
    log(`inserting ${count} done rows`);
    seedDatabase(workspaces.inotify.database, tree, old);
    copyFileSync(workspaces.inotify.database, seed);
    const fresh = [];
    for (let i = 0; i < NEW_FILES; i++) {
      const path = join(tree, `project-${String(i % dirs).padStart(3, '0')}`, `new-${String(i).padStart(3, '0')}.wav`);
      writeFileSync(path, smallWav(2048));
      fresh.push(path);
    }
    const freshSet = new Set(fresh);

    log('find over the tree (1 unmeasured + 3 measured)');
    const findMs = [];
    for (let i = 0; i < 4; i++) {
      const done = await runTimed('find', [tree, '-printf', '%s %T@\\n'], { timeoutMs: 600_000 });
      if (done.code !== 0) throw new Error(`find exited ${done.code}: ${done.stderr}`);
      if (i > 0) findMs.push(done.wallMs);
    }
    const find = median(findMs);
    // The floor under any startup figure: Node starting and importing the CLI's modules, nothing else.
    const floorMs = [];
    for (let i = 0; i < 3; i++) {
      const [command, args] = ourCommand(['--version']);
      const done = await runTimed(command, args, { timeoutMs: 60_000 });
      if (done.code !== 0) throw new Error(`--version exited ${done.code}: ${done.stderr}`);
      floorMs.push(done.wallMs);
    }

    const measure = async (mode, runIndex) => {
      const ws = workspaces[mode];
      mkdirSync(join(ws.dir, 'state'), { recursive: true, mode: 0o700 });
      for (const suffix of ['-wal', '-shm']) rmSync(`${ws.database}${suffix}`, { force: true });
      copyFileSync(seed, ws.database);
      const requestsBefore = (await sandbox.requests()).length;
      const objectsBefore = (await sandbox.objects()).length;
      const startedAt = Date.now();
      const daemon = Daemon.start(ws);
      let stopped;
      try {
        await daemon.ready(1_200_000);
        const queued = () => fresh.every((p) => daemon.files.get(p)?.queued);
        await daemon.waitFor(queued, 300_000, `the ${NEW_FILES} new files to be queued`);
        await daemon.waitFor(() => fresh.every((p) => daemon.files.get(p)?.done), 300_000, `the ${NEW_FILES} new files to be done`);
      } finally {
        stopped = await daemon.stop(120_000);
      }
      const requests = (await sandbox.requests()).slice(requestsBefore);
      const objects = (await sandbox.objects()).slice(objectsBefore);
      const oldTouched = [...daemon.files.keys()].filter((p) => !freshSet.has(p)).length;
      const oldUploaded = objects.filter((o) => !o.objectName.startsWith('new-')).length;
      const result = {
        run: runIndex,
        readyMs: daemon.readyAt - startedAt,
        queuedMs: Math.max(...fresh.map((p) => daemon.files.get(p).queued)) - startedAt - SETTLE_SECONDS * 1000,
        hwmKb: stopped.hwmKb,
        puts: requests.filter((r) => r.endpoint === 'put').length,
        urlRequests: requests.filter((r) => r.endpoint === 'multi-upload').length,
        newStored: objects.length - oldUploaded,
        oldUploaded,
        oldTouched,
      };
      log(`${mode} run ${runIndex + 1}: ready ${(result.readyMs / 1000).toFixed(2)} s, queued ${(result.queuedMs / 1000).toFixed(2)} s, peak RSS ${kbToMb(result.hwmKb).toFixed(0)} MB, ${result.puts} PUTs`);
      return result;
    };

    const results = { find: { ms: findMs }, floor: { ms: floorMs }, inotify: [], polling: [] };
    for (let i = 0; i < runsPerMode; i++) {
      for (const mode of ['inotify', 'polling']) results[mode].push(await measure(mode, i));
    }

    const rows = [];
    for (const mode of ['inotify', 'polling']) {
      const counted = results[mode].slice(1);
      const label = mode === 'inotify' ? 'inotify' : 'polling: always';
      const details = mode === 'inotify' ? { files: count, newFiles: NEW_FILES, settleSeconds: SETTLE_SECONDS, ...results } : undefined;
      const ready = median(counted.map((r) => r.readyMs)) / 1000;
      const queued = median(counted.map((r) => r.queuedMs)) / 1000;
      const reuploaded = Math.max(...results[mode].map((r) => r.oldUploaded));
      const touched = Math.max(...results[mode].map((r) => r.oldTouched));
      const uploads = results[mode].map((r) => r.puts);
      rows.push(
        relative({ benchmark: title, figure: `${label}: spawn → ready (${count / 1000}k done files)`, unit: 's', ours: ready, baseline: find / 1000, atMost: 3, details }),
        relative({ benchmark: title, figure: `${label}: spawn → ${NEW_FILES} new queued, minus settle`, unit: 's', ours: queued, baseline: find / 1000, atMost: 3 }),
        absolute({ benchmark: title, figure: `${label}: peak RSS (VmHWM)`, unit: 'MB', ours: kbToMb(Math.max(...results[mode].map((r) => r.hwmKb ?? NaN))), atMost: 150 }),
        absolute({
          benchmark: title,
          figure: `${label}: old files re-uploaded`,
          unit: 'files',
          ours: reuploaded,
          atMost: 0,
          note: `PUTs per run ${uploads.join(', ')} for ${NEW_FILES} new files; old files with any transition: ${touched}`,
        }),
      );
    }
    rows.push(
      info({
        benchmark: title,
        figure: 'floor: node + CLI imports (--version)',
        unit: 's',
        ours: median(floorMs) / 1000,
        baseline: find / 1000,
        note: 'what any command costs before it does anything; baseline column = find',
      }),
    );
    return rows;
  } finally {
    await sandbox.stop();
  }
}
