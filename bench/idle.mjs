/*
 * Idle memory (issue 17): what a daemon with nothing to do holds, as `ps`
 * and systemd's MemoryCurrent see it most of its life. Two watched folders;
 * some files go through it (20 × 1 MiB each, quick 5), then it sits idle
 * for 30 s and its VmRSS is read (the median of five reads 200 ms apart; no
 * forced GC, since nobody forces one in production). 30 s, because what
 * lingers after work is given back on its own within seconds, not at once:
 * V8's memory reducer shrinks the heap about 8 s after allocation stops
 * (an idle daemon read at 5 s showed 73 MB, at 10 s 63 MB), and the
 * hashing thread ends 10 s after the last upload. Then it is
 * restarted over that history and read again the same way once ready: a
 * daemon that has uploaded nothing yet since its start.
 *
 * The floor under both is Node itself: `node -e 'setInterval(() => {}, 1e3)'`,
 * read the same way (INFO). The notes split each figure into RssAnon (heaps,
 * buffers: the process's own memory) and RssFile (code mapped from node and
 * the native modules), with V8's heap from the probe (SIGUSR2).
 */
import { randomFillSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { smallWav } from './lib/audio.mjs';
import { Daemon, LineProcess, Sandbox } from './lib/proc.mjs';
import { absolute, info } from './lib/report.mjs';
import { MiB, kbToMb, median, procMemory, sleep } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'idle';
const IDLE_MS = 30_000;
const TARGET_MB = 64;

/** Five reads of a quiet process, 200 ms apart, after `IDLE_MS` of quiet; medians in kB. */
async function quietMemory(pid) {
  await sleep(IDLE_MS);
  const reads = [];
  for (let i = 0; i < 5; i++) {
    reads.push(procMemory(pid) ?? {});
    await sleep(200);
  }
  const mid = (key) => median(reads.map((r) => r[key]));
  return { rssKb: mid('rssKb'), anonKb: mid('anonKb'), fileKb: mid('fileKb') };
}

/** The daemon's quiet memory, with V8's heap as the probe reads it (no GC: the probe collects only under --expose-gc). */
async function quietDaemon(daemon) {
  const memory = await quietMemory(daemon.pid);
  const sample = await daemon.sample();
  return { ...memory, heapUsed: sample.heapUsed, heapTotal: sample.heapTotal, external: sample.external, arrayBuffers: sample.arrayBuffers };
}

const mb = (kb) => `${kbToMb(kb).toFixed(1)} MB`;
const split = (m) => `RssAnon ${mb(m.anonKb)} + RssFile ${mb(m.fileKb)}`;
const heap = (m) => `V8 heap ${(m.heapUsed / 1e6).toFixed(1)} of ${(m.heapTotal / 1e6).toFixed(1)} MB, external ${(m.external / 1e6).toFixed(1)} MB`;

export async function run({ quick, work, log }) {
  const perFolder = quick ? 5 : 20;
  const bare = new LineProcess(process.execPath, ['-e', 'setInterval(() => {}, 1e3)']);
  let floor;
  try {
    floor = await quietMemory(bare.child.pid);
  } finally {
    await bare.stop();
  }
  log(`bare node: ${mb(floor.rssKb)} (${split(floor)})`);

  const sandbox = await Sandbox.start();
  try {
    const second = join(work, 'ws', 'second');
    const ws = createWorkspace(join(work, 'ws'), sandbox, { folder: { settleSeconds: 0.5 }, moreFolders: [{ path: second, settleSeconds: 0.5 }] });
    const total = perFolder * 2;
    let afterUploads;
    let daemon = Daemon.start(ws);
    try {
      await daemon.ready(60_000);
      const buffer = smallWav(MiB);
      for (const dir of [ws.inbox, second]) {
        for (let i = 0; i < perFolder; i++) {
          randomFillSync(buffer, 44, 32);
          writeFileSync(join(dir, `idle-${String(i).padStart(3, '0')}.wav`), buffer);
        }
      }
      await daemon.waitFor(() => daemon.count('done') >= total, 120_000, `${total} files done`);
      afterUploads = await quietDaemon(daemon);
      log(`idle after ${total} uploads: ${mb(afterUploads.rssKb)} (${split(afterUploads)}; ${heap(afterUploads)})`);
    } finally {
      await daemon.stop();
    }
    let restarted;
    daemon = Daemon.start(ws);
    try {
      await daemon.ready(60_000);
      restarted = await quietDaemon(daemon);
      log(`idle after a restart: ${mb(restarted.rssKb)} (${split(restarted)}; ${heap(restarted)})`);
    } finally {
      await daemon.stop();
    }
    const details = { idleMs: IDLE_MS, perFolder, floor, afterUploads, restarted };
    return [
      absolute({
        benchmark: title,
        figure: `RSS idle after uploading ${total} files (2 folders)`,
        unit: 'MB',
        ours: kbToMb(afterUploads.rssKb),
        atMost: TARGET_MB,
        note: `${split(afterUploads)}; ${heap(afterUploads)}; ${IDLE_MS / 1000} s idle, no forced GC`,
        details,
      }),
      absolute({
        benchmark: title,
        figure: `RSS idle after a restart over that history`,
        unit: 'MB',
        ours: kbToMb(restarted.rssKb),
        atMost: TARGET_MB,
        note: `${split(restarted)}; ${heap(restarted)}`,
      }),
      info({ benchmark: title, figure: "floor: bare node -e 'setInterval(…)'", unit: 'MB', ours: kbToMb(floor.rssKb), note: split(floor) }),
    ];
  } finally {
    await sandbox.stop();
  }
}
