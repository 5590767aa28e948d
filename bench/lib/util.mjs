import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

export const sleep = (ms) => delay(ms);
export const MiB = 1024 * 1024;

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile, p in 0..100. */
export function percentile(values, p) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
}

export const round = (value, digits = 2) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : value);

/** Rejects once `ms` passed: every wait in the harness is bounded. */
export async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms / 1000)} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function statusKb(text, key) {
  return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** VmRSS and VmHWM (kB) of a process, and VmRSS split into RssAnon (its own memory) and RssFile (mapped code); null once it is gone. */
export function procMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rssKb: statusKb(status, 'VmRSS'), hwmKb: statusKb(status, 'VmHWM'), anonKb: statusKb(status, 'RssAnon'), fileKb: statusKb(status, 'RssFile') };
  } catch {
    return null;
  }
}

/** utime + stime of a process in clock ticks (USER_HZ = 100 on Linux); null once it is gone. */
export function procCpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/** utime and stime of a process in seconds (USER_HZ = 100); null once it is gone. */
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
  } catch {
    return null;
  }
}

export const GiB = 1024 * MiB;

/**
 * Bytes a process has read through read(2) and its kin (`rchar` of
 * /proc/<pid>/io): for the sandbox, the request bodies it took off its
 * sockets. null once it is gone.
 */
export function procReadBytes(pid) {
  try {
    return Number(/^rchar:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return null;
  }
}

export const kbToMb = (kb) => (kb * 1024) / 1e6;

/** Busy and total clock ticks of the whole machine, all cores (/proc/stat): busy is all but idle and iowait. */
export function machineCpuTicks() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3] - fields[4], total };
}

/**
 * utime + stime of a process and its direct children in clock ticks: a
 * PostgreSQL postmaster and its backends (a backend that exited in between
 * takes its ticks with it). 0 once they are gone.
 */
export function familyCpuTicks(pid) {
  let ticks = procCpuTicks(pid) ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone between the listing and the read.
    }
  }
  return ticks;
}
