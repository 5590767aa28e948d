/*
 * 2. Burst: many 1 MiB files written at once; time from the last write to
 * the last upload done, against bench/baselines/burst.sh (inotifywait +
 * curl, xargs -P at the daemon's concurrency, no durability) on the same
 * storage. Interleaved repetitions, medians.
 *
 * Storage is the bench's sink (lib/sink.mjs) with verification on: it
 * hashes each PUT with native MD5 and answers that, as storage does. The
 * sandbox's JavaScript hashing (7–9 ms of CPU per 1 MiB file, on a 2-core
 * machine shared with both sides) was most of the cost of a file on either
 * side, and so capped the ratio near 1. API calls still go to the sandbox,
 * through the sink.
 *
 * Ours is reported minus settleSeconds: the settle rule is a product
 * guarantee (a file is uploaded only once it stopped changing) that the
 * baseline does not have, and its length is a setting, not a cost of the
 * code. Everything else the daemon does is counted.
 *
 * Then an untimed pass under `strace -f -c` counts sync calls (fsync,
 * fdatasync, …) per file: a run with no file is subtracted from a run with
 * K files, so start-up and shutdown are not charged to files.
 */
import { randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptEnsure, has } from './lib/apt.mjs';
import { smallWav } from './lib/audio.mjs';
import { Daemon, LineProcess, Sandbox, Sink } from './lib/proc.mjs';
import { absolute, failed, info, relative } from './lib/report.mjs';
import { MiB, kbToMb, median, procCpuTicks } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'burst';
const SCRIPT = fileURLToPath(new URL('./baselines/burst.sh', import.meta.url));
const FILE_BYTES = MiB;
const SETTLE_SECONDS = 1;
/** The product's default uploads.concurrency, set explicitly on both sides. */
const CONCURRENCY = 2;

/** Writes `count` distinct valid WAVs as fast as a plain loop can; returns their paths. */
function writeBurst(dir, count, prefix) {
  const buffer = smallWav(FILE_BYTES);
  const paths = [];
  for (let i = 0; i < count; i++) {
    // A fresh tag makes each file distinct bytes with a distinct beginning (see lib/audio.mjs).
    randomFillSync(buffer, 44, 32);
    const path = join(dir, `${prefix}-${String(i).padStart(5, '0')}.wav`);
    writeFileSync(path, buffer);
    paths.push(path);
  }
  return paths;
}

/** `strace -c` summary → { syscall: calls }. */
function parseStrace(file) {
  const counts = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const tokens = line.trim().split(/\s+/);
    const name = tokens.at(-1);
    if (!/^[a-z_0-9]+$/.test(name ?? '') || name === 'total' || name === 'syscall') continue;
    const calls = Number(tokens[3]);
    if (Number.isFinite(calls)) counts[name] = calls;
  }
  return counts;
}

const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

export async function run({ quick, work, log }) {
  const count = quick ? 200 : 1000;
  const reps = quick ? 2 : 3;
  const timeoutMs = 120_000 + count * 1000;
  const rows = [];
  const skipReason = await aptEnsure({ present: () => has('inotifywait'), packages: ['inotify-tools'], what: 'inotifywait (inotify-tools), for the baseline', log });
  const sandbox = await Sandbox.start();
  const results = { ours: [], baseline: [] };
  let sink;
  try {
    sink = await Sink.start(sandbox);
    await sink.verify(true);
    /** CPU of what serves the uploads: the sink (storage) and the sandbox (the API). */
    const serverTicks = () => procCpuTicks(sink.pid) + procCpuTicks(sandbox.pid);
    const methods = {
      async ours(rep) {
        const ws = createWorkspace(join(work, `ours-${rep}`), sink, { folder: { settleSeconds: SETTLE_SECONDS }, uploads: { concurrency: CONCURRENCY } });
        const daemon = Daemon.start(ws);
        await daemon.ready(60_000);
        const cpu = [procCpuTicks(daemon.pid), serverTicks()];
        const writeStart = Date.now();
        const paths = writeBurst(ws.inbox, count, 'burst');
        const lastWrite = Date.now();
        let stopped;
        try {
          await daemon.waitFor(() => daemon.count('done') >= count, timeoutMs, `${count} files done`);
        } finally {
          cpu.push(procCpuTicks(daemon.pid), serverTicks());
          stopped = await daemon.stop();
        }
        const doneAt = Math.max(...paths.map((p) => daemon.files.get(p)?.done ?? NaN));
        const transitions = [...daemon.reached.values()].reduce((a, b) => a + b, 0);
        return {
          ms: doneAt - lastWrite - SETTLE_SECONDS * 1000,
          rawMs: doneAt - lastWrite,
          writeMs: lastWrite - writeStart,
          hwmKb: stopped.hwmKb,
          daemonCpuS: (cpu[2] - cpu[0]) / 100,
          sandboxCpuS: (cpu[3] - cpu[1]) / 100,
          transitionsPerFile: transitions / count,
          problems: daemon.problems.slice(0, 10),
        };
      },
      async baseline(rep) {
        const dir = join(work, `baseline-${rep}`);
        mkdirSync(dir, { recursive: true });
        const proc = new LineProcess('bash', [SCRIPT, dir, sink.url, String(CONCURRENCY)], { env: { ...process.env, CRYOMIX_API_KEY: sandbox.apiKey } });
        try {
          await proc.waitFor(() => proc.stderr.includes('Watches established'), 30_000, 'inotifywait to watch');
          const cpu = serverTicks();
          const writeStart = Date.now();
          writeBurst(dir, count, 'burst');
          const lastWrite = Date.now();
          await proc.waitFor(() => proc.lines.length >= count, timeoutMs, `${count} baseline uploads`);
          const sandboxCpuS = (serverTicks() - cpu) / 100;
          const done = proc.lines.map((line) => line.split(' '));
          const refused = done.filter(([, status]) => status !== '200');
          if (refused.length) throw new Error(`the baseline got ${refused.length} failed uploads, e.g. ${refused[0].join(' ')}`);
          const doneAt = Math.max(...done.map(([t]) => Number(t)));
          return { ms: doneAt - lastWrite, writeMs: lastWrite - writeStart, sandboxCpuS };
        } finally {
          await proc.stop();
        }
      },
    };
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? ['ours', 'baseline'] : ['baseline', 'ours'];
      for (const method of order) {
        if (method === 'baseline' && skipReason) continue;
        log(`rep ${rep + 1}/${reps}: ${method} (${count} files)`);
        results[method].push(await methods[method](rep));
      }
    }
    const objects = (await sink.objects()).filter((o) => o.size === FILE_BYTES);
    const expected = count * (results.ours.length + results.baseline.length);
    if (objects.length !== expected) throw new Error(`the sink took ${objects.length} objects of ${FILE_BYTES} bytes, expected ${expected}`);

    const ours = median(results.ours.map((r) => r.ms)) / 1000;
    const figure = `last write → last done (${count} × 1 MiB)`;
    const note = `ours minus settleSeconds (${SETTLE_SECONDS} s); concurrency ${CONCURRENCY} both sides`;
    rows.push(
      skipReason
        ? { ...failed(title, { message: `baseline skipped: ${skipReason}` }, 'SKIP'), figure, ours, unit: 's' }
        : relative({ benchmark: title, figure, unit: 's', ours, baseline: median(results.baseline.map((r) => r.ms)) / 1000, atMost: 0.5, note, details: { count, reps, fileBytes: FILE_BYTES, ...results } }),
    );
    const perFile = (key) => (median(results.ours.map((r) => r[key])) / count) * 1000;
    rows.push(
      info({
        benchmark: title,
        figure: 'daemon CPU per file',
        unit: 'ms',
        ours: perFile('daemonCpuS'),
        note: `${median(results.ours.map((r) => r.transitionsPerFile)).toFixed(1)} state transitions per file (group commit: not one commit each)`,
      }),
      info({
        benchmark: title,
        figure: 'sink and sandbox CPU per file, serving ours / the baseline',
        unit: 'ms',
        ours: perFile('sandboxCpuS'),
        baseline: (median(results.baseline.map((r) => r.sandboxCpuS)) / count) * 1000,
      }),
      info({ benchmark: title, figure: 'daemon peak RSS (VmHWM)', unit: 'MB', ours: kbToMb(Math.max(...results.ours.map((r) => r.hwmKb ?? NaN))) }),
    );
  } catch (error) {
    rows.push(failed(title, error));
  } finally {
    await sink?.stop();
  }

  try {
    rows.push(await fsyncPass({ quick, work, log, sandbox }));
  } catch (error) {
    rows.push(failed(`${title} (fsync pass)`, error));
  } finally {
    await sandbox.stop();
  }
  return rows;
}

async function fsyncPass({ quick, work, log, sandbox }) {
  const files = quick ? 20 : 50;
  const pass = async (name, count) => {
    const ws = createWorkspace(join(work, name), sandbox, { folder: { settleSeconds: 0.3 }, uploads: { concurrency: CONCURRENCY } });
    const trace = join(ws.dir, 'strace.txt');
    const daemon = Daemon.start(ws, { strace: trace });
    await daemon.ready(60_000);
    if (count > 0) {
      writeBurst(ws.inbox, count, 'sync');
      await daemon.waitFor(() => daemon.count('done') >= count, 120_000 + count * 2000, `${count} files done under strace`);
    }
    await daemon.stop();
    return { counts: parseStrace(trace), transitions: [...daemon.reached.values()].reduce((a, b) => a + b, 0) };
  };
  log(`sync calls: strace pass with no file, then with ${files} files (untimed)`);
  const empty = await pass('strace-empty', 0);
  const loaded = await pass('strace-files', files);
  const perFile = (sum(loaded.counts) - sum(empty.counts)) / files;
  const breakdown = Object.entries(loaded.counts)
    .map(([name, calls]) => `${name} ${((calls - (empty.counts[name] ?? 0)) / files).toFixed(1)}`)
    .join(', ');
  // Issue 17: commits grouped, so that a burst does not pay one sync per transition per file.
  return absolute({
    benchmark: title,
    figure: 'sync calls per file (strace -f -c)',
    unit: 'syncs',
    ours: perFile,
    atMost: 1.5,
    note: `per file: ${breakdown || 'none'}; ${(loaded.transitions / files).toFixed(1)} transitions per file; a run with no file made ${sum(empty.counts)}; the baseline makes none (no durability)`,
    details: { files, empty, loaded },
  });
}
