/*
 * Scale-out (issue 18): 1, 2 and 3 daemons sharing one PostgreSQL queue
 * and one watched folder, as several machines would share one network
 * share. Each daemon has its own uplink, modelled by its own
 * `uploads.maxBytesPerSecond` (the same for all); the same batch of files
 * is renamed into the folder at once, and the figure is files per second
 * from the first rename to the last `done`. Files per second must grow
 * with the number of daemons: ≥ 2.5× with three, against one daemon
 * measured in the same run. Runs are interleaved (the order rotates) and
 * medians taken.
 *
 * The cap is what makes this a test of the queue and not of the machine:
 * at 4 MB/s per daemon three daemons move 12 MB/s, a small part of what
 * this 2-core machine carries on loopback (the `large` benchmark's curl
 * does over 1 GB/s), so each daemon's uplink is its limit, as on separate
 * machines. Each note says whether every daemon kept its cap busy (its
 * bytes over the time from its first upload's start to its last upload's
 * end) and how busy the machine's cores were: a shortfall then points at
 * the work's distribution (a daemon with few files or a late start), at
 * the tail (the queue empty while the last uploads finish) or at the CPU.
 *
 * Every daemon sees every file (the folder is shared); intake is
 * idempotent and each queued file is claimed by one daemon (SKIP LOCKED).
 * Checked, not assumed: the files uploaded by the daemons (each daemon's
 * own `uploading → uploaded` transitions) add up to the batch, and the
 * sink took exactly one PUT per file.
 *
 * Storage is the bench's sink (lib/sink.mjs) with verification on (native
 * MD5 of each PUT, as storage answers), API calls go through it to the
 * sandbox. The PostgreSQL server is the tests' own
 * (test/helpers/postgresServer.mjs): a fresh data directory, 127.0.0.1, as
 * the `postgres` user when run as root; each run gets a fresh database.
 * As elsewhere, settleSeconds is subtracted from the time (a setting, not
 * a cost of the code); the notes give the ratio with it too.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBin, startPostgresServer } from '../test/helpers/postgresServer.mjs';
import { aptEnsure } from './lib/apt.mjs';
import { smallWav } from './lib/audio.mjs';
import { Daemon, Sandbox, Sink, onEnd } from './lib/proc.mjs';
import { failed, info, relative } from './lib/report.mjs';
import { MiB, familyCpuTicks, machineCpuTicks, median, procCpuTicks, sleep } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'scale-out';
const MB = 1e6;
/** Each daemon's uplink. */
const CAP_MB_PER_S = 4;
const CAP = CAP_MB_PER_S * MB;
const SETTLE_SECONDS = 1;
/** The product's default uploads.concurrency, set explicitly: two uploads share each daemon's cap. */
const CONCURRENCY = 2;
const SHARE = 'exports';
const DAEMON_COUNTS = [1, 2, 3];
/** "Kept its cap busy": its rate while it had uploads at least this share of the cap. */
const SATURATED = 0.95;

function plan(quick) {
  return quick ? { files: 48, reps: 1 } : { files: 96, reps: 3 };
}

/** The batch's sizes, 1 to 2 MiB, the same in every run (a spread, so that uploads do not end in lockstep). */
function batchSizes(count) {
  return Array.from({ length: count }, (_, i) => MiB + Math.round((((i * 37) % 64) / 64) * MiB));
}

/** Writes the batch into `dir` (fresh random tags: no two files alike, nor like another run's); returns the names. */
function stage(dir, sizes) {
  mkdirSync(dir, { recursive: true });
  return sizes.map((size, i) => {
    const name = `Mix ${String(i + 1).padStart(3, '0')}.wav`;
    writeFileSync(join(dir, name), smallWav(size));
    return name;
  });
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const megabytes = (bytes) => `${(bytes / MB).toFixed(1)} MB`;

export async function run({ quick, work, log }) {
  const { files, reps } = plan(quick);
  const missing = await aptEnsure({ present: () => postgresBin() !== undefined, packages: ['postgresql'], what: 'the PostgreSQL server (Debian: postgresql)', log });
  if (missing !== undefined) return [failed(title, new Error(missing), 'SKIP')];

  const sizes = batchSizes(files);
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  const sandbox = await Sandbox.start();
  let sink;
  let stopPostgres;
  const runs = new Map(DAEMON_COUNTS.map((n) => [n, []]));
  try {
    sink = await Sink.start(sandbox);
    await sink.verify(true);
    log('starting a private PostgreSQL server');
    const postgres = await startPostgresServer();
    // Ended by endAll as well, should this benchmark be interrupted.
    stopPostgres = onEnd(() => postgres.stop());
    log(`${files} files, ${megabytes(totalBytes)} in all; each daemon capped at ${CAP_MB_PER_S} MB/s, ${CONCURRENCY} uploads at a time`);
    for (let rep = 0; rep < reps; rep++) {
      const order = DAEMON_COUNTS.map((_, i) => DAEMON_COUNTS[(i + rep) % DAEMON_COUNTS.length]);
      for (const daemons of order) {
        log(`rep ${rep + 1}/${reps}: ${daemons} daemon(s)`);
        const result = await runOnce({ daemons, rep, sizes, totalBytes, postgres, sink, sandbox, dir: join(work, `daemons-${daemons}-rep-${rep + 1}`) });
        log(`${daemons} daemon(s): ${result.filesPerSecond.toFixed(2)} files/s; ${result.perDaemon.map((d) => `#${d.index} ${d.files} files`).join(', ')}`);
        runs.get(daemons).push(result);
      }
    }
  } finally {
    // A server that had to be killed is removed all the same; saying so must not hide why the run ended.
    await stopPostgres?.().catch((error) => log(`stopping PostgreSQL: ${error.message}`));
    await sink?.stop();
    await sandbox.stop();
  }
  return rows(runs, { files, reps, totalBytes });
}

/** One batch through `daemons` daemons on a fresh database; the daemons are stopped before it returns. */
async function runOnce({ daemons: count, rep, sizes, totalBytes, postgres, sink, sandbox, dir }) {
  const url = await postgres.createDatabase(`scale_out_${count}_${rep + 1}`);
  const staging = join(dir, 'staging');
  const share = join(dir, 'share');
  const names = stage(staging, sizes);
  const paths = names.map((name) => join(share, name));
  const sizeOf = new Map(paths.map((path, i) => [path, sizes[i]]));
  const workspaces = Array.from({ length: count }, (_, i) =>
    createWorkspace(join(dir, `daemon-${i + 1}`), sink, {
      inbox: share,
      folder: { settleSeconds: SETTLE_SECONDS, share: SHARE },
      uploads: { concurrency: CONCURRENCY, maxBytesPerSecond: `${CAP_MB_PER_S} MB/s` },
      state: { postgres: { url } },
      env: { PGPASSWORD: postgres.password },
    }),
  );
  const daemons = workspaces.map((ws) => Daemon.start(ws));
  const serverTicks = () => procCpuTicks(sink.pid) + procCpuTicks(sandbox.pid);
  // Ideal time ×3, plus room for a slow start: a much slower run still ends, and is reported with its figure.
  const timeoutMs = 120_000 + (3000 * totalBytes) / (count * CAP);
  let before;
  let after;
  let dropStart;
  let lastRename;
  const objectsBefore = (await sink.objects()).length;
  try {
    await Promise.all(daemons.map((daemon) => daemon.ready(60_000)));
    before = { daemons: daemons.map((d) => procCpuTicks(d.pid)), postgres: familyCpuTicks(postgres.pid), servers: serverTicks(), machine: machineCpuTicks() };
    dropStart = Date.now();
    for (const name of names) renameSync(join(staging, name), join(share, name));
    lastRename = Date.now();
    await allDone(daemons, paths, timeoutMs);
    after = { daemons: daemons.map((d) => procCpuTicks(d.pid)), postgres: familyCpuTicks(postgres.pid), servers: serverTicks(), machine: machineCpuTicks() };
  } finally {
    await Promise.all(daemons.map((daemon) => daemon.stop()));
  }

  // Each file is done on exactly one daemon's log; its earliest `done` anywhere is when it was done.
  const doneAt = (path) => Math.min(...daemons.map((d) => d.files.get(path)?.done ?? Infinity));
  const lastDone = Math.max(...paths.map(doneAt));
  const perDaemon = daemons.map((daemon, i) => {
    const mine = paths.filter((path) => daemon.files.get(path)?.uploaded !== undefined);
    const bytes = mine.reduce((sum, path) => sum + sizeOf.get(path), 0);
    const firstStart = Math.min(...mine.map((path) => daemon.files.get(path).uploading));
    const lastEnd = Math.max(...mine.map((path) => daemon.files.get(path).uploaded));
    const busyMs = lastEnd - firstStart;
    return {
      index: i + 1,
      files: mine.length,
      bytes,
      firstStartMs: mine.length ? firstStart - dropStart : null,
      lastUploadedMs: mine.length ? lastEnd - dropStart : null,
      lastClaimMs: mine.length ? Math.max(...mine.map((path) => daemon.files.get(path).uploading)) - dropStart : null,
      // Its uplink's use while it had work: its bytes over first start → last end.
      bytesPerSecond: mine.length ? bytes / (busyMs / 1000) : 0,
      cpuS: (after.daemons[i] - before.daemons[i]) / 100,
      problems: daemon.problems.slice(0, 5),
    };
  });
  const uploaded = perDaemon.reduce((sum, d) => sum + d.files, 0);
  if (uploaded !== paths.length) throw new Error(`the daemons logged ${uploaded} uploads for ${paths.length} files (${perDaemon.map((d) => `#${d.index}: ${d.files}`).join(', ')})`);
  const objects = (await sink.objects()).slice(objectsBefore);
  const stored = objects.reduce((sum, o) => sum + o.size, 0);
  if (objects.length !== paths.length || stored !== totalBytes) throw new Error(`the sink took ${objects.length} PUTs (${stored} bytes) for ${paths.length} files (${totalBytes} bytes)`);
  // The batch is of no more use, and 9 of them would pile up on the disk.
  rmSync(share, { recursive: true, force: true });

  const elapsedMs = lastDone - dropStart;
  const machine = { busy: after.machine.busy - before.machine.busy, total: after.machine.total - before.machine.total };
  const windowS = elapsedMs / 1000;
  return {
    daemons: count,
    files: paths.length,
    bytes: totalBytes,
    elapsedMs,
    measuredS: windowS - SETTLE_SECONDS,
    filesPerSecond: paths.length / (windowS - SETTLE_SECONDS),
    filesPerSecondWithSettle: paths.length / windowS,
    renamesMs: lastRename - dropStart,
    firstUploadMs: Math.min(...perDaemon.filter((d) => d.files).map((d) => d.firstStartMs)),
    lastClaimMs: Math.max(...perDaemon.filter((d) => d.files).map((d) => d.lastClaimMs)),
    idealS: totalBytes / (count * CAP),
    perDaemon,
    cpu: {
      machineBusy: machine.busy / machine.total,
      daemonsCores: perDaemon.reduce((sum, d) => sum + d.cpuS, 0) / windowS,
      postgresCores: (after.postgres - before.postgres) / 100 / windowS,
      sinkAndSandboxCores: (after.servers - before.servers) / 100 / windowS,
    },
  };
}

/** Resolves once every path is done on one daemon or another; throws, saying where things stood, when a daemon exits, a file fails, or time is up. */
async function allDone(daemons, paths, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = paths.filter((path) => daemons.some((d) => d.files.get(path)?.done !== undefined)).length;
    if (done === paths.length) return;
    const where = () => `${done} of ${paths.length} done; ${daemons.map((d, i) => `#${i + 1} uploaded ${d.count('uploaded')}`).join(', ')}`;
    for (const [i, daemon] of daemons.entries()) {
      const lost = daemon.count('failed') + daemon.count('rejected') + daemon.count('removed');
      if (lost > 0) throw new Error(`daemon #${i + 1}: ${lost} file(s) failed, were rejected or removed (${where()}): ${daemon.describe()}`);
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
        throw new Error(`daemon #${i + 1} exited (${daemon.child.exitCode ?? daemon.child.signalCode}); ${where()}: ${daemon.describe()}`);
      }
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${where()}; ${daemons.map((d, i) => `#${i + 1}:${d.describe()}`).join(' ')}`);
    await sleep(50);
  }
}

/** The run whose files per second is the median (the lower middle for an even count): its details explain the figure. */
function medianRun(results) {
  const sorted = [...results].sort((a, b) => a.filesPerSecond - b.filesPerSecond);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Why a figure is what it is: the time against the ideal, each daemon's share and use of its cap, the tail, the CPU. */
function explain(r) {
  const daemons = r.perDaemon
    .map((d) => {
      if (d.files === 0) return `#${d.index} 0 files`;
      const use = d.bytesPerSecond / CAP;
      return `#${d.index} ${d.files} files ${megabytes(d.bytes)}, uploads ${seconds(d.firstStartMs)}–${seconds(d.lastUploadedMs)} after the drop at ${(d.bytesPerSecond / MB).toFixed(2)} MB/s (${(use * 100).toFixed(0)} % of its cap${use >= SATURATED ? '' : ': below it'}), ${d.cpuS.toFixed(1)} CPU s`;
    })
    .join('; ');
  const tail = r.elapsedMs - r.lastClaimMs;
  return (
    `first rename → last done ${seconds(r.elapsedMs)}, minus settleSeconds (${SETTLE_SECONDS} s): ${r.measuredS.toFixed(1)} s; ` +
    `${r.daemons} × ${CAP_MB_PER_S} MB/s would take ${r.idealS.toFixed(1)} s (${((r.idealS / r.measuredS) * 100).toFixed(0)} % of that); ` +
    `first upload ${seconds(r.firstUploadMs)} after the drop, last claim → last done ${seconds(tail)}; per daemon: ${daemons}; ` +
    `machine ${(r.cpu.machineBusy * 100).toFixed(0)} % busy (daemons ${r.cpu.daemonsCores.toFixed(2)} cores, PostgreSQL ${r.cpu.postgresCores.toFixed(2)}, sink + sandbox ${r.cpu.sinkAndSandboxCores.toFixed(2)})`
  );
}

function rows(runs, { files, reps, totalBytes }) {
  const rate = (n) => median(runs.get(n).map((r) => r.filesPerSecond));
  const rateWithSettle = (n) => median(runs.get(n).map((r) => r.filesPerSecondWithSettle));
  const repsText = (n) => `${reps > 1 ? `median of ${reps} (${runs.get(n).map((r) => r.filesPerSecond.toFixed(2)).join(', ')} files/s); the median run: ` : ''}`;
  const details = (n) => ({ files, reps, totalBytes, capBytesPerSecond: CAP, concurrency: CONCURRENCY, settleSeconds: SETTLE_SECONDS, runs: runs.get(n) });
  const ratioNote = (n) => `with settleSeconds counted: ${(rateWithSettle(n) / rateWithSettle(1)).toFixed(2)}×; ${repsText(n)}${explain(medianRun(runs.get(n)))}`;
  return [
    info({
      benchmark: title,
      figure: `1 daemon: ${files} × 1–2 MiB (${megabytes(totalBytes)}) dropped at once, ${CAP_MB_PER_S} MB/s cap per daemon`,
      unit: 'files/s',
      ours: rate(1),
      note: `${repsText(1)}${explain(medianRun(runs.get(1)))}`,
      details: details(1),
    }),
    info({
      benchmark: title,
      figure: '2 daemons, one PostgreSQL queue: files/s against 1 daemon',
      unit: 'files/s',
      ours: rate(2),
      baseline: rate(1),
      note: ratioNote(2),
      details: details(2),
    }),
    relative({
      benchmark: title,
      figure: '3 daemons, one PostgreSQL queue: files/s against 1 daemon',
      unit: 'files/s',
      ours: rate(3),
      baseline: rate(1),
      atLeast: 2.5,
      note: ratioNote(3),
      details: details(3),
    }),
  ];
}
