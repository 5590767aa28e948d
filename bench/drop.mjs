/*
 * Drop (issue 17): 10,000 small files (quick 2,000) arriving in a running
 * daemon's watched folder all at once, as a sync tool or a `mv *.wav`
 * delivers them. They are written beforehand into a sibling directory on
 * the same file system, then renamed in by a tight loop: each appears whole,
 * in one event, within a fraction of a second. The figure is files per
 * second from the first rename to the last `done`, and the daemon's peak
 * RSS over the run (the probe's VmHWM).
 *
 * The files are 4 KiB, as in the soak: this measures the per-file cost of
 * the pipeline (detection, the settle rule, the DB's commits, the API call,
 * the PUT), not bandwidth; 1 MiB files at 300 files/s would be the
 * sandbox's hashing rate. As elsewhere, settleSeconds is subtracted: it is
 * a setting, not a cost of the code.
 *
 * No baseline: the targets are absolute.
 */
import { randomFillSync } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { smallWav } from './lib/audio.mjs';
import { Daemon, Sandbox } from './lib/proc.mjs';
import { absolute, info } from './lib/report.mjs';
import { kbToMb, procCpuTicks } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'drop';
const FILE_BYTES = 4096;
const SETTLE_SECONDS = 1;

/** Writes `count` distinct valid WAVs into `dir`; returns their names. */
function stage(dir, count) {
  mkdirSync(dir, { recursive: true });
  const buffer = smallWav(FILE_BYTES);
  const names = [];
  for (let i = 0; i < count; i++) {
    // A fresh tag: no two files are the same bytes or look like twins (lib/audio.mjs).
    randomFillSync(buffer, 44, 32);
    const name = `drop-${String(i).padStart(5, '0')}.wav`;
    writeFileSync(join(dir, name), buffer);
    names.push(name);
  }
  return names;
}

export async function run({ quick, work, log }) {
  const count = quick ? 2000 : 10_000;
  // Bounded, yet a daemon ten times slower than the target still finishes and is reported as a FAIL with its figure.
  const timeoutMs = 120_000 + count * 35;
  const sandbox = await Sandbox.start();
  try {
    const ws = createWorkspace(join(work, 'ws'), sandbox, { folder: { settleSeconds: SETTLE_SECONDS } });
    const staging = join(work, 'staging');
    log(`writing ${count} × ${FILE_BYTES / 1024} KiB files beside the watched folder`);
    const names = stage(staging, count);
    const daemon = Daemon.start(ws);
    let stopped;
    let dropStart;
    let lastDrop;
    const cpu = {};
    try {
      await daemon.ready(60_000);
      cpu.before = procCpuTicks(daemon.pid);
      log(`renaming ${count} files into the watched folder`);
      dropStart = Date.now();
      for (const name of names) renameSync(join(staging, name), join(ws.inbox, name));
      lastDrop = Date.now();
      await daemon.waitFor(() => daemon.count('done') >= count, timeoutMs, `${count} files done`).catch((error) => {
        throw new Error(`${daemon.count('done')} of ${count} done, ${daemon.count('queued')} queued: ${error.message}`);
      });
      cpu.after = procCpuTicks(daemon.pid);
    } finally {
      stopped = await daemon.stop(120_000);
    }
    const paths = names.map((name) => join(ws.inbox, name));
    const at = (state) => Math.max(...paths.map((p) => daemon.files.get(p)?.[state] ?? NaN));
    const lastDone = at('done');
    const lastQueued = at('queued');
    const stored = (await sandbox.objects()).filter((o) => o.size === FILE_BYTES).length;
    if (stored !== count) throw new Error(`the sandbox stored ${stored} objects of ${FILE_BYTES} bytes, expected ${count}`);
    const seconds = (lastDone - dropStart) / 1000 - SETTLE_SECONDS;
    const transitions = [...daemon.reached.values()].reduce((a, b) => a + b, 0);
    const details = { count, fileBytes: FILE_BYTES, settleSeconds: SETTLE_SECONDS, dropMs: lastDrop - dropStart, lastQueuedMs: lastQueued - dropStart, lastDoneMs: lastDone - dropStart, hwmKb: stopped.hwmKb, transitions, problems: daemon.problems.slice(0, 10) };
    log(`last done ${(seconds + SETTLE_SECONDS).toFixed(1)} s after the drop began; peak RSS ${kbToMb(stopped.hwmKb).toFixed(0)} MB`);
    return [
      absolute({
        benchmark: title,
        figure: `${count} × 4 KiB renamed in at once: files per second to the last done`,
        unit: 'files/s',
        ours: count / seconds,
        atLeast: 300,
        note: `first rename → last done ${(seconds + SETTLE_SECONDS).toFixed(1)} s minus settleSeconds (${SETTLE_SECONDS} s); the renames took ${lastDrop - dropStart} ms; default concurrency`,
        details,
      }),
      absolute({ benchmark: title, figure: 'daemon peak RSS (VmHWM)', unit: 'MB', ours: kbToMb(stopped.hwmKb), atMost: 200 }),
      info({
        benchmark: title,
        figure: 'first rename → last queued, minus settle',
        unit: 's',
        ours: (lastQueued - dropStart) / 1000 - SETTLE_SECONDS,
        note: 'detection and the settle rule alone: every file found, settled and recorded',
      }),
      info({
        benchmark: title,
        figure: 'daemon CPU per file',
        unit: 'ms',
        ours: ((cpu.after - cpu.before) / 100 / count) * 1000,
        note: `${(transitions / count).toFixed(1)} state transitions per file`,
      }),
    ];
  } finally {
    await sandbox.stop();
  }
}
