/*
 * Preloaded into every measured Node process with `node --import` (nothing
 * else is changed in the process). It reports memory from /proc/self/status,
 * which is what the targets are about:
 * - on exit: VmHWM, the peak resident set over the whole life of the process,
 *   and the CPU time it used, user and sys, from /proc/self/stat (all its
 *   threads; seconds, in clock ticks of 10 ms);
 * - on SIGUSR2: VmRSS now, then a full GC (when started with --expose-gc)
 *   and VmRSS again half a second later, so two quiet points compare
 *   retained memory rather than garbage not yet collected.
 * - every $BENCH_PROBE_EVERY_MS (when set): VmRSS and process.memoryUsage(),
 *   to see which kind of memory a peak is made of.
 * Lines go to $BENCH_PROBE_FILE, never to stdout, which carries the daemon's logs.
 */
import { appendFileSync, readFileSync } from 'node:fs';

const out = process.env.BENCH_PROBE_FILE;

function memory() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  // RssAnon is the process's own memory (heaps, buffers); RssFile is code and data mapped from files.
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), anonKb: kb('RssAnon'), fileKb: kb('RssFile') };
}

function write(record) {
  appendFileSync(out, `${JSON.stringify({ pid: process.pid, t: Date.now(), ...record })}\n`);
}

/** utime and stime of this process so far, in seconds (USER_HZ = 100). */
function cpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuUserS: Number(fields[11]) / 100, cpuSysS: Number(fields[12]) / 100 };
}

if (out) {
  process.on('exit', () => write({ event: 'exit', ...memory(), ...cpu() }));
  process.on('SIGUSR2', () => {
    const before = memory();
    const gc = globalThis.gc;
    if (typeof gc === 'function') gc();
    setTimeout(() => {
      const { heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
      write({ event: 'sample', before, after: memory(), gc: typeof gc === 'function', heapUsed, heapTotal, external, arrayBuffers });
    }, 500).unref();
  });
  const every = Number(process.env.BENCH_PROBE_EVERY_MS);
  if (every > 0) {
    setInterval(() => {
      const { heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
      write({ event: 'tick', ...memory(), heapUsed, heapTotal, external, arrayBuffers });
    }, every).unref();
  }
}
