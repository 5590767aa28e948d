/*
 * 6. Bandwidth caps (issue 16): `uploads.maxBytesPerSecond` held by one
 * upload and shared by four, and a new cap reaching uploads in flight on
 * SIGHUP.
 *
 * One daemon per number of uploads goes through a chain of caps without a
 * restart: the first from its config file, each next one written to the
 * file and sent as SIGHUP, while the same files keep uploading (they are
 * sized so that none ends before the chain does). At each cap the aggregate
 * rate is measured over a steady window; after each SIGHUP to a cap, the
 * time until the new rate holds and the bytes that came in its first second
 * beyond it. One step is `off`: the kernel's socket buffers are full when
 * the next cap comes, and the throttle cannot hold back what they hold.
 *
 * The rate is what arrives: the sandbox's `rchar` (/proc/<pid>/io, bytes
 * taken off its sockets: nothing else it reads is big) sampled every 50 ms.
 * Per-upload figures, for the spread between concurrent uploads, come from
 * `list --json` (bytesSent, recorded by the daemon at most every 250 ms)
 * read as the window opens and as it closes.
 *
 * Files are sparse (a unique tag, then a hole): they cost no disk and no
 * time to write, and the bytes' values do not matter to a rate.
 *
 * "An unlimited daemon is as fast as before": `maxBytesPerSecond: off`
 * against the key absent, one large upload each, interleaved. Both mean no
 * cap, so this guards the config's reading of `off`; the comparison with
 * curl that holds across versions is the `large` benchmark's.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeSparseWav } from './lib/audio.mjs';
import { Daemon, Sandbox, ourCommand, runTimed } from './lib/proc.mjs';
import { absolute, info, relative } from './lib/report.mjs';
import { MiB, kbToMb, median, procCpuTicks, procReadBytes, sleep } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'bandwidth limit';
const MB = 1e6;
const SETTLE_SECONDS = 1;
const SAMPLE_MS = 50;
/** After the last upload started, before the first window: the signed-URL requests and first chunks are over. */
const LEAD_SECONDS = 2;
/** Watched after each SIGHUP, before that cap's window (if any) opens. */
const AFTER_SIGHUP_SECONDS = 4;
/** "The new rate holds": every span from then on carries the cap ±10 %. */
const TRANSITION_TOLERANCE = 0.1;

/** No cap, in a chain: the kernel's socket buffers fill, and a cap set then must hold back what they already hold. */
const OFF = 'off';
/** What an uncapped upload is assumed to reach, to size the files: above the sandbox's ceiling (~180 MB/s here). */
const UNCAPPED_MB_PER_S = 250;

/**
 * The caps each daemon goes through, in MB/s. A steady window is measured
 * the first time a cap appears; a later step is there for its transition
 * alone. Quick: shorter windows, fewer steps.
 */
function plan(quick) {
  return quick
    ? { windowSeconds: 8, chains: [{ uploads: 1, caps: [32, 8] }, { uploads: 4, caps: [1, 8, OFF, 8] }], unlimitedBytes: 512 * MiB, unlimitedReps: 3 }
    : { windowSeconds: 30, chains: [{ uploads: 1, caps: [1, 8, 32, 8] }, { uploads: 4, caps: [32, 8, 1, 8, OFF, 8] }], unlimitedBytes: 1024 * MiB, unlimitedReps: 3 };
}

/**
 * A chain as steps: the cap; whether the change into it is timed (every
 * SIGHUP to a cap); whether a window is measured at it (a cap's first
 * appearance); and how long the step lasts.
 */
function steps(caps, windowSeconds) {
  const seen = new Set();
  return caps.map((cap, index) => {
    const window = cap !== OFF && !seen.has(cap);
    seen.add(cap);
    // The first step also waits for the daemon to notice the files and start them.
    const lead = index === 0 ? LEAD_SECONDS + 10 : AFTER_SIGHUP_SECONDS;
    return { cap, from: caps[index - 1], timed: index > 0 && cap !== OFF, window, seconds: lead + (window ? windowSeconds : 0) };
  });
}

const rateText = (cap) => (cap === OFF ? OFF : `${cap} MB/s`);

export async function run({ quick, work, log }) {
  const { windowSeconds, chains, unlimitedBytes, unlimitedReps } = plan(quick);
  const sandbox = await Sandbox.start();
  const measured = [];
  let unlimited;
  try {
    for (const chain of chains) measured.push(await runChain({ chain, windowSeconds, sandbox, work, log }));
    unlimited = await compareUnlimited({ size: unlimitedBytes, reps: unlimitedReps, sandbox, work, log });
  } finally {
    await sandbox.stop();
  }
  return [...rateRows(measured, windowSeconds), ...transitionRows(measured), ...chainRows(measured, unlimited), unlimitedRow(unlimited)];
}

/** What a chain needs written: files big enough to be uploading still when it ends, at each upload's share of every cap. */
function fileBytes({ uploads, caps }, windowSeconds) {
  const bytes = steps(caps, windowSeconds).reduce((sum, { cap, seconds }) => sum + (cap === OFF ? UNCAPPED_MB_PER_S : cap) * MB * seconds, 0) / uploads;
  // Margin for an uneven share between uploads, and to spare.
  const size = Math.ceil((1.5 * bytes + 64 * MiB) / MiB) * MiB;
  // A WAV's sizes are 32-bit: longer chains need more uploads, or shorter windows.
  if (size >= 4 * 1024 * MiB) throw new Error(`caps ${caps.join(', ')} MB/s need ${(size / MiB).toFixed(0)} MiB per file, more than a WAV can hold`);
  return size;
}

async function runChain({ chain, windowSeconds, sandbox, work, log }) {
  const { uploads, caps } = chain;
  const dir = join(work, `uploads-${uploads}`);
  const staging = join(dir, 'staging');
  mkdirSync(staging, { recursive: true });
  const size = fileBytes(chain, windowSeconds);
  const names = Array.from({ length: uploads }, (_, i) => `Capped Mix ${i + 1}.wav`);
  for (const name of names) writeSparseWav(join(staging, name), size);
  log(`${uploads} upload(s) of ${(size / MiB).toFixed(0)} MiB (sparse), caps ${caps.map(rateText).join(' → ')}`);

  const settings = (cap) => ({
    folder: { settleSeconds: SETTLE_SECONDS },
    // No grace at the stop: the files are not meant to finish.
    uploads: { concurrency: uploads, maxBytes: 4 * size, maxBytesPerSecond: rateText(cap), shutdownGraceSeconds: 0 },
  });
  const ws = createWorkspace(join(dir, 'ws'), sandbox, settings(caps[0]));
  const paths = names.map((name) => join(ws.inbox, name));
  const daemon = Daemon.start(ws);
  // The daemon's own word that a cap is in force: "upload limit: 8 MB/s (base)", with its time.
  const announced = [];
  // Warnings are not failures, but a capped upload should give none (a stall it imposed on itself, say).
  const warnings = [];
  daemon.lineListeners.add((line) => {
    if (line.includes('"uploadLimit"')) announced.push(JSON.parse(line));
    if (line.includes('"level":40')) warnings.push(JSON.parse(line).msg);
  });
  const sampler = new ReadSampler(sandbox.pid);
  const windows = [];
  const transitions = [];
  let stopped;
  try {
    await daemon.ready(60_000);
    sampler.start();
    for (const name of names) renameSync(join(staging, name), join(ws.inbox, name));
    await daemon.waitFor(() => paths.every((path) => daemon.files.get(path)?.uploading), 60_000, `${uploads} upload(s) to start`);
    await sleep(LEAD_SECONDS * 1000);
    for (const { cap, from, timed, window } of steps(caps, windowSeconds)) {
      if (from !== undefined) {
        log(`SIGHUP: ${rateText(from)} → ${rateText(cap)}`);
        writeFileSync(ws.configFile, JSON.stringify({ ...ws.config, uploads: { ...ws.config.uploads, ...settings(cap).uploads } }, null, 2));
        const sentAt = performance.now();
        const sentAtEpoch = Date.now();
        process.kill(daemon.pid, 'SIGHUP');
        // One sample past the end, for the interpolation.
        await sleep(AFTER_SIGHUP_SECONDS * 1000 + 2 * SAMPLE_MS);
        if (timed) {
          const heard = announced.find((record) => record.time >= sentAtEpoch && record.uploadLimit === cap * MB);
          transitions.push({
            uploads,
            from,
            to: cap,
            ...sampler.timeToRate(sentAt, sentAt + AFTER_SIGHUP_SECONDS * 1000, cap * MB),
            daemonLoggedAfterMs: heard ? heard.time - sentAtEpoch : null,
          });
        }
      }
      if (!window) continue;
      log(`${rateText(cap)}: ${windowSeconds} s window`);
      windows.push({ uploads, cap, ...(await measureWindow({ sampler, daemon, ws, paths, seconds: windowSeconds })) });
    }
    // A file that ended, failed or was retried inside a window makes its rate meaningless.
    const ended = ['uploaded', 'retrying', 'failed'].filter((state) => daemon.count(state) > 0);
    if (ended.length > 0) throw new Error(`an upload reached ${ended.join(', ')} before the chain ended: ${daemon.describe()}`);
  } finally {
    sampler.stop();
    stopped = await daemon.stop();
  }
  return { uploads, sizeBytes: size, windows, transitions, warnings, hwmKb: stopped.hwmKb };
}

/**
 * The aggregate rate over `seconds` of steady state, from the sandbox's
 * reads; per upload, bytesSent from `list --json` as the window opens and
 * as it closes (both read at the same lag, so their differences compare).
 */
async function measureWindow({ sampler, daemon, ws, paths, seconds }) {
  const opened = performance.now();
  const cpu = [procCpuTicks(daemon.pid)];
  const first = sentPerFile(ws, paths);
  await sleep(seconds * 1000);
  const closed = performance.now();
  cpu.push(procCpuTicks(daemon.pid));
  const last = sentPerFile(ws, paths);
  // One sample past the end, for the interpolation.
  await sleep(2 * SAMPLE_MS);
  const received = sampler.bytesAt(closed) - sampler.bytesAt(opened);
  const [before, after] = await Promise.all([first, last]);
  const perUpload = paths.map((path) => (after.get(path) - before.get(path)) / seconds);
  const elapsed = (closed - opened) / 1000;
  return { seconds: elapsed, receivedBytes: received, bytesPerSecond: received / elapsed, perUploadBytesPerSecond: perUpload, daemonCores: (cpu[1] - cpu[0]) / 100 / elapsed };
}

/** path → bytesSent, as `cryomix-watch list --json` shows them; every path must be uploading. */
async function sentPerFile(ws, paths) {
  const [command, args] = ourCommand(['list', '--json', '--config', ws.configFile]);
  const done = await runTimed(command, args, { env: ws.env, timeoutMs: 30_000 });
  if (done.code !== 0) throw new Error(`list --json exited ${done.code}: ${done.stderr}`);
  const rows = new Map(JSON.parse(done.stdout).map((row) => [row.path, row]));
  for (const path of paths) {
    if (rows.get(path)?.state !== 'uploading') throw new Error(`${path} is ${rows.get(path)?.state ?? 'not listed'}, expected uploading`);
  }
  return new Map(paths.map((path) => [path, rows.get(path).bytesSent]));
}

/** The bytes a process read, every SAMPLE_MS, with the harness's monotonic clock. */
class ReadSampler {
  constructor(pid) {
    this.pid = pid;
    /** [performance.now() ms, rchar] */
    this.samples = [];
  }

  start() {
    this.take();
    this.timer = setInterval(() => this.take(), SAMPLE_MS);
  }

  take() {
    const bytes = procReadBytes(this.pid);
    if (bytes !== null) this.samples.push([performance.now(), bytes]);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** Bytes read by time `t`, interpolated between the samples around it. */
  bytesAt(t) {
    const s = this.samples;
    const after = s.findIndex(([time]) => time >= t);
    if (after <= 0) throw new Error(`no samples around ${t.toFixed(0)} ms (${s.length} samples)`);
    const [t0, b0] = s[after - 1];
    const [t1, b1] = s[after];
    return b0 + ((b1 - b0) * (t - t0)) / (t1 - t0);
  }

  /**
   * From `from` (the SIGHUP) to the start of the first span after which
   * every span up to `to` carries `rate` ±10 %. A span is 250 ms, or longer
   * at a low rate so that it holds 32 chunks of 64 KiB: shorter, one chunk
   * more or less would swing it by more than the tolerance.
   */
  timeToRate(from, to, rate) {
    const span = Math.max(250, ((32 * 64 * 1024) / rate) * 1000);
    const starts = [];
    for (let start = from; start + span <= to; start += SAMPLE_MS) {
      const spanRate = ((this.bytesAt(start + span) - this.bytesAt(start)) * 1000) / span;
      starts.push({ start, ok: Math.abs(spanRate / rate - 1) <= TRANSITION_TOLERANCE, spanRate });
    }
    let first = starts.length;
    while (first > 0 && starts[first - 1].ok) first -= 1;
    const held = first < starts.length;
    return {
      seconds: held ? (starts[first].start - from) / 1000 : NaN,
      // What arrived in the first second beyond the new cap: bytes the change did not hold back (burst credit, socket buffers).
      excessBytes: this.bytesAt(from + 1000) - this.bytesAt(from) - rate,
      spanMs: span,
      // The rate over the whole span after it held: the cap or near it.
      heldRate: held ? ((this.bytesAt(to) - this.bytesAt(starts[first].start)) * 1000) / (to - starts[first].start) : NaN,
      spanRates: starts.map((s) => Math.round(s.spanRate)),
    };
  }
}

/**
 * `maxBytesPerSecond: off` and the key absent, each a fresh daemon uploading
 * one file; interleaved, medians. One unmeasured upload first: the first
 * full-speed upload of a run was often the slowest, whichever side it was.
 */
async function compareUnlimited({ size, reps, sandbox, work, log }) {
  const staging = join(work, 'unlimited');
  mkdirSync(staging, { recursive: true });
  const file = join(staging, 'Unlimited Mix.wav');
  writeSparseWav(file, size);
  const variants = { off: { maxBytesPerSecond: 'off' }, absent: {} };
  const uploadOnce = async (variant, name) => {
    const ws = createWorkspace(join(work, name), sandbox, { folder: { settleSeconds: SETTLE_SECONDS }, uploads: variants[variant] });
    const daemon = Daemon.start(ws);
    const target = join(ws.inbox, basename(file));
    try {
      await daemon.ready(60_000);
      renameSync(file, target);
      await daemon.waitFor(() => daemon.files.get(target)?.uploaded, 60_000 + (size / 5e6) * 1000, 'the file to be uploaded');
    } finally {
      const stopped = await daemon.stop();
      renameSync(target, file);
      hwmKb.push(stopped.hwmKb);
    }
    return size / MB / (daemon.files.get(target).uploadingMs / 1000);
  };
  const hwmKb = [];
  log('unlimited: warm-up upload (not measured)');
  await uploadOnce('absent', 'unlimited-warm-up');
  const results = { off: [], absent: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const variant of rep % 2 === 0 ? ['off', 'absent'] : ['absent', 'off']) {
      log(`unlimited rep ${rep + 1}/${reps}: key ${variant}`);
      results[variant].push(await uploadOnce(variant, `unlimited-${variant}-${rep}`));
    }
  }
  return { size, reps, results, hwmKb: Math.max(...hwmKb) };
}

function rateRows(measured, windowSeconds) {
  const rows = [];
  for (const { uploads, windows } of measured) {
    for (const w of [...windows].sort((a, b) => a.cap - b.cap)) {
      const share = w.perUploadBytesPerSecond;
      const listed = share.reduce((sum, rate) => sum + rate, 0);
      rows.push(
        relative({
          benchmark: title,
          figure: `cap ${w.cap} MB/s, ${uploads} upload${uploads > 1 ? 's' : ''}: aggregate rate over ${windowSeconds} s`,
          unit: 'MB/s',
          ours: w.bytesPerSecond / MB,
          baseline: w.cap,
          between: [0.95, 1.05],
          note: `list --json says ${(listed / MB).toFixed(2)} MB/s sent (the sandbox's reads: ${(w.bytesPerSecond / MB).toFixed(2)}); the daemon used ${w.daemonCores.toFixed(2)} cores`,
          details: w,
        }),
      );
      if (uploads > 1) {
        rows.push(
          relative({
            benchmark: title,
            figure: `cap ${w.cap} MB/s, ${uploads} uploads: slowest / fastest upload`,
            unit: 'MB/s',
            ours: Math.min(...share) / MB,
            baseline: Math.max(...share) / MB,
            atLeast: 0.8,
            note: `per upload: ${share.map((rate) => (rate / MB).toFixed(2)).join(', ')} MB/s`,
          }),
        );
      }
    }
  }
  return rows;
}

function transitionRows(measured) {
  return measured.flatMap(({ uploads, transitions }) =>
    transitions.map((t) =>
      absolute({
        benchmark: title,
        figure: `SIGHUP ${rateText(t.from)} → ${rateText(t.to)}, ${uploads} upload${uploads > 1 ? 's' : ''}: time to the new rate`,
        unit: 's',
        ours: t.seconds,
        atMost: 1,
        note: `${Number.isNaN(t.seconds) ? `never within ±${TRANSITION_TOLERANCE * 100} % for the ${AFTER_SIGHUP_SECONDS} s watched; ` : ''}spans of ${t.spanMs.toFixed(0)} ms within ±${TRANSITION_TOLERANCE * 100} %; then ${(t.heldRate / MB).toFixed(2)} MB/s; ${(t.excessBytes / MB).toFixed(1)} MB beyond the cap in the first second; the daemon logged the new cap ${t.daemonLoggedAfterMs === null ? 'never' : `after ${t.daemonLoggedAfterMs} ms`}`,
        details: t,
      }),
    ),
  );
}

/**
 * Per daemon: its peak RSS against the highest of the unlimited daemons'
 * (the throttle holds no data, so a cap should cost no memory), and the
 * warnings it logged.
 */
function chainRows(measured, unlimited) {
  return measured.map(({ uploads, hwmKb, warnings }) =>
    info({
      benchmark: title,
      figure: `daemon peak RSS (VmHWM), ${uploads} capped upload${uploads > 1 ? 's' : ''} / one unlimited`,
      unit: 'MB',
      ours: kbToMb(hwmKb),
      baseline: kbToMb(unlimited.hwmKb),
      note: `${warnings.length} warning(s) logged${warnings.length ? `: ${[...new Set(warnings)].slice(0, 3).join(' | ')}` : ''}`,
      details: { warnings },
    }),
  );
}

function unlimitedRow({ size, reps, results }) {
  return relative({
    benchmark: title,
    figure: `unlimited: maxBytesPerSecond off / key absent (${size / MiB} MiB, time in uploading)`,
    unit: 'MB/s',
    ours: median(results.off),
    baseline: median(results.absent),
    // The same code path on both sides: a wider gap than this machine's noise would be a bug in reading `off`.
    atLeast: 0.9,
    note: `medians of ${reps}; off: ${results.off.map((r) => r.toFixed(0)).join(', ')}; absent: ${results.absent.map((r) => r.toFixed(0)).join(', ')} MB/s`,
    details: { sizeBytes: size, reps, ...results },
  });
}
