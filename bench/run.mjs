#!/usr/bin/env node
/*
 * npm run bench [-- --quick] [--only=large,burst,drop,startup,idle,latency,soak,limit,scale-out] [--keep] [--tmp=DIR] [--dist=DIR]
 *
 * Compiles src/ into a private directory, runs each benchmark against its
 * baseline in the same run, prints one table and writes
 * bench/results/latest.json. A benchmark that fails is reported in its row;
 * the others still run. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as burst from './burst.mjs';
import * as drop from './drop.mjs';
import * as idle from './idle.mjs';
import * as large from './large.mjs';
import * as latency from './latency.mjs';
import * as limit from './limit.mjs';
import { describeMachine, machineLines } from './lib/machine.mjs';
import { CLI, endAll, runTimed, useCli } from './lib/proc.mjs';
import { failed, table, writeResults } from './lib/report.mjs';
import { sleep } from './lib/util.mjs';
import * as scaleOut from './scaleout.mjs';
import * as soak from './soak.mjs';
import * as startup from './startup.mjs';

const BENCHMARKS = { large, burst, drop, startup, idle, latency, soak, limit, 'scale-out': scaleOut };
const RESULTS = fileURLToPath(new URL('./results', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));

/**
 * dist/ is shared: anyone working in this tree may rebuild it while a run
 * is going, and a run would then measure two versions of the code. So the
 * run compiles src/ once into bench/.build/<pid>/dist (inside the repo, so
 * node_modules resolves; package.json beside it for the version) and
 * measures that. The compile is retried: a file being edited may not build.
 */
async function privateBuild(log) {
  const out = join(REPO, 'bench', '.build', String(process.pid));
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  for (let attempt = 1; ; attempt++) {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const built = await runTimed(process.execPath, [tsc, '-p', join(REPO, 'tsconfig.json'), '--outDir', join(out, 'dist')], { timeoutMs: 300_000 });
    if (built.code === 0) break;
    const why = `${built.stdout}${built.stderr}`.trim().split('\n').slice(0, 5).join('\n');
    if (attempt >= 3) {
      rmSync(out, { recursive: true, force: true });
      throw new Error(`src/ does not compile (3 attempts, 30 s apart):\n${why}`);
    }
    log(`src/ does not compile (someone may be mid-edit); again in 30 s:\n${why}`);
    await sleep(30_000);
  }
  copyFileSync(join(REPO, 'package.json'), join(out, 'package.json'));
  return { dir: out, cli: cliIn(join(out, 'dist')), id: treeHash(join(out, 'dist')) };
}

/** A short hash of the compiled JavaScript: two runs with the same id measured the same code. */
/** The command's entry point in a build: bin.cjs since it sizes the thread pool, main.js in older builds a baseline may be. */
function cliIn(dist) {
  const bin = join(dist, 'cli', 'bin.cjs');
  return existsSync(bin) ? bin : join(dist, 'cli', 'main.js');
}

function treeHash(dir) {
  const hash = createHash('sha256');
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.js')) hash.update(path.slice(dir.length)).update(readFileSync(path));
    }
  };
  walk(dir);
  return hash.digest('hex').slice(0, 12);
}

function parseArgs(argv) {
  const options = { quick: false, only: Object.keys(BENCHMARKS), keep: false, tmp: tmpdir(), dist: undefined };
  for (const arg of argv) {
    const [key, value] = arg.split('=');
    if (key === '--quick') options.quick = true;
    else if (key === '--keep') options.keep = true;
    else if (key === '--only' && value) options.only = value.split(',');
    else if (key === '--tmp' && value) options.tmp = value;
    else if (key === '--dist' && value) options.dist = resolve(value);
    else if (key === '--help' || key === '-h') {
      console.log('usage: npm run bench -- [--quick] [--only=large,burst,drop,startup,idle,latency,soak,limit,scale-out] [--keep] [--tmp=DIR] [--dist=DIR (an existing build instead of compiling src/)]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  const unknown = options.only.filter((name) => !(name in BENCHMARKS));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}; expected some of ${Object.keys(BENCHMARKS).join(', ')}`);
  return options;
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd(); // not trim(): porcelain lines start with a space
  } catch {
    return undefined;
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const uncommitted = (git(['status', '--porcelain', '--', 'src']) ?? '').split('\n').filter(Boolean).map((line) => line.slice(3));
  let build;
  if (options.dist) {
    useCli(cliIn(options.dist));
    build = { id: treeHash(options.dist), dir: undefined };
  } else {
    console.log('compiling src/ into a private build (bench/.build/)');
    build = await privateBuild((message) => console.log(message));
    useCli(build.cli);
  }
  try {
    return await measure(options, { commit, uncommitted, build });
  } finally {
    if (build.dir && !options.keep) rmSync(build.dir, { recursive: true, force: true });
  }
}

async function measure(options, { commit, uncommitted, build }) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing`);
  const root = mkdtempSync(join(options.tmp, 'cryomix-bench-'));
  const machine = describeMachine(root);
  const mode = options.quick ? 'quick' : 'full';
  const startedAt = new Date().toISOString();
  const code = `${commit ?? 'unknown'}${uncommitted.length ? ` + ${uncommitted.length} uncommitted file(s) in src/` : ''}, build ${build.id}`;
  console.log(machineLines(machine).join('\n'));
  console.log(`mode: ${mode}; code: ${code}; work dirs under ${root}\n`);

  let interrupted = false;
  const onSignal = (sig) => {
    interrupted = true;
    console.error(`\n${sig}: ending the processes this harness started, then exiting`);
    void endAll().finally(() => {
      if (!options.keep) rmSync(root, { recursive: true, force: true });
      if (build.dir && !options.keep) rmSync(build.dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const rows = [];
  const timings = {};
  for (const name of options.only) {
    if (interrupted) break;
    const bench = BENCHMARKS[name];
    const work = join(root, name);
    const started = performance.now();
    const log = (message) => console.log(`[${name} ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`);
    log('start');
    try {
      rows.push(...(await bench.run({ quick: options.quick, work, log })));
    } catch (error) {
      log(`failed: ${error instanceof Error ? error.stack : error}`);
      rows.push(error?.skip ? failed(bench.title, error, 'SKIP') : failed(bench.title, error));
    } finally {
      // Whatever a failed benchmark left running must not disturb the next one.
      await endAll();
      if (!options.keep) rmSync(work, { recursive: true, force: true });
    }
    timings[name] = Math.round((performance.now() - started) / 1000);
    log(`end (${timings[name]} s)`);
  }
  if (!options.keep) rmSync(root, { recursive: true, force: true });

  console.log(`\n${machineLines(machine).join('\n')}\nmode: ${mode}; code: ${code}\n`);
  console.log(table(rows));
  const result = { mode, startedAt, finishedAt: new Date().toISOString(), commit, uncommittedSrcFiles: uncommitted, buildId: build.id, machine, secondsPerBenchmark: timings, rows };
  writeResults(RESULTS, result);
  const failing = rows.filter((r) => r.result === 'FAIL' || r.result === 'ERROR').length;
  console.log(`\n${rows.filter((r) => r.result === 'PASS').length} PASS, ${failing} FAIL/ERROR, ${rows.filter((r) => r.result === 'SKIP').length} SKIP; written to bench/results/latest.json`);
  // A benchmark run reports; it does not gate. Exit 1 only when the harness itself broke.
  return rows.some((r) => r.result === 'ERROR') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (error) => {
    console.error(error instanceof Error ? error.message : error);
    await endAll();
    process.exitCode = 2;
  },
);
