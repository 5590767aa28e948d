#!/usr/bin/env node
/*
 * npm run bench [-- --quick] [--only=large,burst,startup,latency,soak] [--keep] [--tmp=DIR]
 *
 * Runs each benchmark against its baseline in the same run, prints one
 * table and writes bench/results/latest.json. A benchmark that fails is
 * reported in its row; the others still run. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as burst from './burst.mjs';
import * as large from './large.mjs';
import * as latency from './latency.mjs';
import { describeMachine, machineLines } from './lib/machine.mjs';
import { CLI, endAll } from './lib/proc.mjs';
import { failed, table, writeResults } from './lib/report.mjs';
import * as soak from './soak.mjs';
import * as startup from './startup.mjs';

const BENCHMARKS = { large, burst, startup, latency, soak };
const RESULTS = fileURLToPath(new URL('./results', import.meta.url));

function parseArgs(argv) {
  const options = { quick: false, only: Object.keys(BENCHMARKS), keep: false, tmp: tmpdir() };
  for (const arg of argv) {
    const [key, value] = arg.split('=');
    if (key === '--quick') options.quick = true;
    else if (key === '--keep') options.keep = true;
    else if (key === '--only' && value) options.only = value.split(',');
    else if (key === '--tmp' && value) options.tmp = value;
    else if (key === '--help' || key === '-h') {
      console.log('usage: npm run bench -- [--quick] [--only=large,burst,startup,latency,soak] [--keep] [--tmp=DIR]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  const unknown = options.only.filter((name) => !(name in BENCHMARKS));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}; expected some of ${Object.keys(BENCHMARKS).join(', ')}`);
  return options;
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first ("npm run bench" does)`);
  const root = mkdtempSync(join(options.tmp, 'cryomix-bench-'));
  const machine = describeMachine(root);
  const mode = options.quick ? 'quick' : 'full';
  const startedAt = new Date().toISOString();
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = (git(['status', '--porcelain', '--', 'src']) ?? '').split('\n').filter(Boolean).length;
  console.log(machineLines(machine).join('\n'));
  console.log(`mode: ${mode}; code: ${commit ?? 'unknown'}${dirty ? ` + ${dirty} uncommitted file(s) in src/` : ''}; work dirs under ${root}\n`);

  let interrupted = false;
  const onSignal = (sig) => {
    interrupted = true;
    console.error(`\n${sig}: ending the processes this harness started, then exiting`);
    void endAll().finally(() => {
      if (!options.keep) rmSync(root, { recursive: true, force: true });
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

  console.log(`\n${machineLines(machine).join('\n')}\nmode: ${mode}\n`);
  console.log(table(rows));
  const result = { mode, startedAt, finishedAt: new Date().toISOString(), commit, uncommittedSrcFiles: dirty, machine, secondsPerBenchmark: timings, rows };
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
