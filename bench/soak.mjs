/*
 * 5. Soak: many small files through the pipeline in batches; the daemon's
 * RSS after the last file against its RSS after the first 1,000, both read
 * at the same kind of quiet point (every file done, two seconds idle), then
 * again after a full GC (the daemon runs with --expose-gc; bench/lib/probe.mjs
 * collects on SIGUSR2). The target is judged on the after-GC figures, which
 * measure what is retained; the raw ones are shown too.
 *
 * afterUpload: move (to a folder outside the watched one), as a drop folder
 * is usually run: the watched folder stays small, so what grows is the
 * pipeline's own memory, not the watcher's per-file state for files that
 * are still there (benchmark 3 measures that, on 100,000 files).
 */
import { randomFillSync } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { smallWav } from './lib/audio.mjs';
import { Daemon, Sandbox } from './lib/proc.mjs';
import { info, relative } from './lib/report.mjs';
import { kbToMb, median, procMemory, sleep } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'soak';
const FILE_BYTES = 4096;
const FIRST = 1000;

async function quietRss(daemon) {
  await sleep(2000);
  const raw = [];
  for (let i = 0; i < 5; i++) {
    raw.push(procMemory(daemon.pid)?.rssKb ?? NaN);
    await sleep(200);
  }
  const sample = await daemon.sample();
  return { rawKb: median(raw), gcKb: sample.after.rssKb, heapUsed: sample.heapUsed, heapTotal: sample.heapTotal, external: sample.external };
}

function fileSize(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export async function run({ quick, work, log }) {
  const total = quick ? 3000 : 20_000;
  const batch = quick ? 250 : 500;
  const deadline = Date.now() + (quick ? 150_000 : 1_800_000);
  const sandbox = await Sandbox.start();
  const curve = [];
  let first;
  let last;
  let written = 0;
  let elapsedMs;
  const ws = createWorkspace(join(work, 'ws'), sandbox, {
    folder: { settleSeconds: 0.5, afterUpload: 'move', moveTo: join(work, 'uploaded') },
  });
  try {
    const daemon = Daemon.start(ws, { exposeGc: true });
    try {
      await daemon.ready(60_000);
      const buffer = smallWav(FILE_BYTES);
      const started = Date.now();
      while (written < total && Date.now() < deadline) {
        for (let i = 0; i < batch; i++, written++) {
          randomFillSync(buffer, 44, 32);
          writeFileSync(join(ws.inbox, `soak-${String(written).padStart(6, '0')}.wav`), buffer);
        }
        await daemon.waitFor(() => daemon.count('done') >= written, 600_000, `${written} files done`);
        elapsedMs = Date.now() - started;
        curve.push({ files: written, rssKb: procMemory(daemon.pid)?.rssKb, atS: Math.round(elapsedMs / 1000) });
        if (written === FIRST) {
          first = await quietRss(daemon);
          log(`after ${written} files: RSS ${kbToMb(first.rawKb).toFixed(1)} MB, after GC ${kbToMb(first.gcKb).toFixed(1)} MB`);
        } else if (written % (batch * 4) === 0) {
          log(`${written} files done, RSS ${kbToMb(curve.at(-1).rssKb).toFixed(1)} MB`);
        }
      }
      last = await quietRss(daemon);
      log(`after ${written} files: RSS ${kbToMb(last.rawKb).toFixed(1)} MB, after GC ${kbToMb(last.gcKb).toFixed(1)} MB`);
      if (daemon.problems.length) log(`problems: ${daemon.problems.slice(0, 5).join(' | ')}`);
    } finally {
      await daemon.stop();
    }
  } finally {
    await sandbox.stop();
  }
  if (!first) throw new Error(`fewer than ${FIRST} files went through before the time bound`);

  const db = new Database(ws.database, { readonly: true });
  const rows = db.prepare('SELECT count(*) AS n FROM jobs').get().n;
  db.close();
  const dbBytes = fileSize(ws.database) + fileSize(`${ws.database}-wal`);
  const cut = written < total ? `; cut at ${written} of ${total} files by the time bound` : '';
  const details = { files: written, batch, fileBytes: FILE_BYTES, first, last, curve, dbBytes, rows };
  return [
    relative({
      benchmark: title,
      figure: `RSS after ${written} files / after ${FIRST} (after GC)`,
      unit: 'MB',
      ours: kbToMb(last.gcKb),
      baseline: kbToMb(first.gcKb),
      atMost: 1.2,
      note: `baseline column = the daemon itself after ${FIRST} files${cut}`,
      details,
    }),
    info({ benchmark: title, figure: `RSS after ${written} / after ${FIRST} (no forced GC)`, unit: 'MB', ours: kbToMb(last.rawKb), baseline: kbToMb(first.rawKb) }),
    info({ benchmark: title, figure: `V8 heap used after ${written} / after ${FIRST} (after GC)`, unit: 'MB', ours: last.heapUsed / 1e6, baseline: first.heapUsed / 1e6 }),
    info({ benchmark: title, figure: 'DB size per 10k rows', unit: 'MB', ours: (dbBytes / 1e6 / rows) * 10_000, note: `${rows} rows in ${(dbBytes / 1e6).toFixed(1)} MB after a clean stop` }),
    info({ benchmark: title, figure: 'files per second (whole soak)', unit: 'files/s', ours: written / (elapsedMs / 1000) }),
  ];
}
