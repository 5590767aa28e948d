/*
 * The processes a benchmark runs: the sandbox (alone in its own process, so
 * the daemon's memory is measured alone), the daemon, one-shot commands and
 * baselines. Every child is registered so that the harness ends exactly the
 * processes it started, by their id, whatever happens.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sleep, within } from './util.mjs';

/** The CLI every process runs; run.mjs points it at its own build of src/ (see useCli). */
export let CLI = fileURLToPath(new URL('../../dist/cli/bin.cjs', import.meta.url));

export function useCli(path) {
  CLI = path;
}
const PROBE = new URL('./probe.mjs', import.meta.url).href;
const SINK = fileURLToPath(new URL('./sink.mjs', import.meta.url));

/** Children still running, with whether they lead their own process group. */
const live = new Map();

function register(child, group) {
  live.set(child.pid, { child, group });
  child.once('exit', () => live.delete(child.pid));
  return child;
}

function signal(pid, sig, group) {
  try {
    process.kill(group ? -pid : pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stops for what a benchmark started through someone else's code (the
 * PostgreSQL server of test/helpers/postgresServer.mjs spawns its own
 * process): endAll runs them once the children are gone, so an interrupted
 * or failed benchmark leaves nothing behind either.
 */
const stops = new Set();

/**
 * Registers `stop` (async) for endAll; returns a function that runs it now,
 * once. It stays registered until it has finished, so that an endAll that
 * comes while the benchmark is already stopping it waits for it too.
 */
export function onEnd(stop) {
  let done;
  const once = () => {
    done ??= Promise.resolve()
      .then(stop)
      .finally(() => stops.delete(once));
    return done;
  };
  stops.add(once);
  return once;
}

/** Ends every child the harness started and that is still running: SIGTERM, then SIGKILL after 5 s; then the stops registered with onEnd. */
export async function endAll() {
  const entries = [...live.entries()];
  for (const [pid, { group }] of entries) signal(pid, 'SIGTERM', group);
  const deadline = Date.now() + 5000;
  while (live.size > 0 && Date.now() < deadline) await sleep(100);
  for (const [pid, { group }] of live.entries()) signal(pid, 'SIGKILL', group);
  await Promise.all([...stops].map((stop) => stop().catch((error) => console.error(`stopping what a benchmark started failed: ${error instanceof Error ? error.message : error}`))));
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
  });
}

/** Splits a stream into lines and hands each to `onLine`. */
function lines(stream, onLine) {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (data) => {
    pending += data;
    let index;
    while ((index = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, index);
      pending = pending.slice(index + 1);
      if (line) onLine(line);
    }
  });
}

/** Runs a command to its end; wall time measured around spawn → exit. */
export function runTimed(command, args, { env, timeoutMs, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = register(spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] }), false);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout.length < 1e6 ? (stdout += d) : undefined));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr.length < 1e6 ? (stderr += d) : undefined));
    const timer = setTimeout(() => {
      signal(child.pid, 'SIGKILL', false);
      reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${command} ${args.join(' ')}`));
    }, timeoutMs ?? 600_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, stdout, stderr, wallMs: performance.now() - start, pid: child.pid });
    });
  });
}

/**
 * `node --import probe.mjs dist/cli/bin.cjs …`: our CLI with the memory
 * probe. $BENCH_NODE_ARGS adds Node flags to every such process, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` (see README, "Finding where time goes").
 */
export function ourCommand(args, { exposeGc = false } = {}) {
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return [process.execPath, [...extra, ...(exposeGc ? ['--expose-gc'] : []), '--import', PROBE, CLI, ...args]];
}

/** The last `event` record of a probe file, or undefined. */
export function probeRecord(file, event, pid) {
  if (!existsSync(file)) return undefined;
  const records = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((r) => r.event === event && (pid === undefined || r.pid === pid));
  return records.at(-1);
}

/** Spawns a loopback server (`… listening on http://…` on stdout) and resolves with it and its URL. */
async function startServer(command, args, env, what) {
  const child = register(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }), false);
  let output = '';
  const url = await within(
    new Promise((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (data) => {
        output += data;
        const found = /listening on (http:\/\/\S+)/.exec(output);
        if (found) resolve(found[1]);
      });
      child.stderr.setEncoding('utf8').on('data', (data) => (output += data));
      child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening: ${output}`)));
    }),
    30_000,
    `${what} to listen`,
  );
  return { child, url };
}

/** A signed PUT URL, asked exactly as the daemon asks (src/cryomix/client.ts). */
async function askSignedUrl(baseUrl, apiKey, name, contentType) {
  const response = await fetch(`${baseUrl}/api/signed-url/multi-upload`, {
    method: 'POST',
    headers: {
      'X-Api-Key': apiKey,
      'Session-Id': crypto.randomUUID(),
      Source: 'Mastering API',
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({ object_names: [name], content_type: contentType, expiration_seconds: 3600 }),
  });
  const body = await response.json();
  const url = body?.data?.upload_object_names?.[name];
  if (response.status !== 200 || typeof url !== 'string') throw new Error(`multi-upload answered ${response.status}: ${JSON.stringify(body)}`);
  return url;
}

export class Sandbox {
  static async start(env = process.env) {
    const { child, url } = await startServer(process.execPath, [CLI, 'sandbox', '--port', '0'], env, 'the sandbox');
    return new Sandbox(child, url);
  }

  constructor(child, url) {
    this.child = child;
    this.url = url;
    this.storageOrigin = `${url}/storage/`;
    this.apiKey = 'sandbox-key';
  }

  get pid() {
    return this.child.pid;
  }

  /** A signed PUT URL, asked exactly as the daemon asks (src/cryomix/client.ts). */
  signedUrl(name, contentType = 'audio/wav') {
    return askSignedUrl(this.url, this.apiKey, name, contentType);
  }

  async requests() {
    return (await fetch(`${this.url}/_sandbox/requests`)).json();
  }

  async objects() {
    return (await fetch(`${this.url}/_sandbox/objects`)).json();
  }

  async stop() {
    signal(this.child.pid, 'SIGTERM', false);
    await within(exited(this.child), 10_000, 'the sandbox to stop').catch(() => signal(this.child.pid, 'SIGKILL', false));
  }
}

/**
 * The storage sink (sink.mjs) in its own process, in front of a sandbox:
 * API calls go through it to the sandbox, PUTs stop at it. It has the
 * sandbox's shape where a workspace needs one (url, storageOrigin, apiKey),
 * so a daemon configured with it asks the sandbox for its URLs and sends
 * its bytes here.
 */
export class Sink {
  static async start(sandbox, env = process.env) {
    const { child, url } = await startServer(process.execPath, [SINK, sandbox.url], env, 'the sink');
    return new Sink(child, url, sandbox);
  }

  constructor(child, url, sandbox) {
    this.child = child;
    this.url = url;
    this.storageOrigin = `${url}/storage/`;
    this.apiKey = sandbox.apiKey;
  }

  get pid() {
    return this.child.pid;
  }

  signedUrl(name, contentType = 'audio/wav') {
    return askSignedUrl(this.url, this.apiKey, name, contentType);
  }

  async #control(method, path, body) {
    const response = await fetch(`${this.url}/_sink/${path}`, { method, ...(body ? { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    if (response.status !== 200) throw new Error(`sink ${method} ${path} answered ${response.status}: ${await response.text()}`);
    return response.json();
  }

  /** The MD5 (base64) to answer for an object of this name and size when not verifying. */
  expect(name, size, md5) {
    return this.#control('POST', 'expect', { name, size, md5 });
  }

  /** On: hash what arrives (MD5, node:crypto) and answer that; off: discard, answer the expected MD5. */
  verify(on) {
    return this.#control('POST', 'verify', { on });
  }

  /** Every PUT it took: name, size, md5 answered, md5 computed (verifying) and registered. */
  objects() {
    return this.#control('GET', 'objects');
  }

  async stop() {
    signal(this.child.pid, 'SIGTERM', false);
    await within(exited(this.child), 10_000, 'the sink to stop').catch(() => signal(this.child.pid, 'SIGKILL', false));
  }
}

/**
 * `cryomix-watch run` with its JSON log parsed as it arrives. Only what the
 * benchmarks need is kept: the ready time, and per file the time it reached
 * each state (the daemon's own clock: pino's `time`, epoch ms, the same
 * clock as the harness's Date.now()).
 */
export class Daemon {
  /**
   * @param workspace from workspace.mjs
   * @param options.exposeGc start Node with --expose-gc (the probe then collects before a sample)
   * @param options.strace  a file: run under `strace -f -c -o FILE` counting sync calls
   */
  static start(workspace, { exposeGc = false, strace } = {}) {
    let [command, args] = ourCommand(['run', '--config', workspace.configFile], { exposeGc });
    if (strace) {
      // --seccomp-bpf: only the traced calls stop the process, so the rest runs at full speed.
      args = ['--seccomp-bpf', '-f', '-c', '-o', strace, '-e', 'trace=fsync,fdatasync,sync_file_range,syncfs,sync', command, ...args];
      command = 'strace';
    }
    const startedAt = Date.now();
    const child = register(spawn(command, args, { env: workspace.env, stdio: ['ignore', 'pipe', 'pipe'] }), false);
    return new Daemon(child, workspace, startedAt, Boolean(strace));
  }

  constructor(child, workspace, startedAt, traced) {
    this.child = child;
    this.workspace = workspace;
    this.startedAt = startedAt;
    this.traced = traced;
    this.readyAt = undefined;
    /** path → { [state]: epoch ms of reaching it, uploadingMs: time spent in `uploading` } */
    this.files = new Map();
    /** state → how many transitions reached it */
    this.reached = new Map();
    this.lastTransitionAt = 0;
    this.problems = [];
    this.tail = [];
    this.waiters = new Set();
    /** Callbacks that see every raw stdout line (a benchmark looking for a message of its own). */
    this.lineListeners = new Set();
    this.exit = exited(child);
    this.exit.then(() => this.notify());
    lines(child.stdout, (line) => this.onLine(line));
    lines(child.stderr, (line) => this.keep(line));
  }

  keep(line) {
    this.tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.tail.length > 40) this.tail.shift();
  }

  onLine(line) {
    this.keep(line);
    for (const listener of this.lineListeners) listener(line);
    // Parse only what is needed: a 20,000-file soak writes 100,000 lines, and this process shares two cores with the daemon.
    if (line.includes('"event":"transition"')) {
      const record = JSON.parse(line);
      let file = this.files.get(record.file);
      if (!file) this.files.set(record.file, (file = {}));
      file[record.to] = record.time;
      if (record.from === 'uploading') file.uploadingMs = record.durationMs;
      this.reached.set(record.to, (this.reached.get(record.to) ?? 0) + 1);
      this.lastTransitionAt = record.time;
      if (['failed', 'rejected', 'retrying', 'removed'].includes(record.to)) this.problems.push(`${record.file}: ${record.from} → ${record.to}${record.reason ? ` (${record.reason})` : ''}`);
    } else if (line.includes('"msg":"ready"')) {
      this.readyAt = JSON.parse(line).time;
    } else if (/"level":(50|60)/.test(line)) {
      this.problems.push(JSON.parse(line).msg);
    }
    this.notify();
  }

  notify() {
    for (const waiter of this.waiters) waiter();
  }

  count(state) {
    return this.reached.get(state) ?? 0;
  }

  get pid() {
    if (!this.traced) return this.child.pid;
    // Under strace the daemon is strace's child.
    try {
      return Number(readFileSync(`/proc/${this.child.pid}/task/${this.child.pid}/children`, 'utf8').trim().split(' ')[0]);
    } catch {
      return undefined;
    }
  }

  /** Resolves once `check()` is truthy (checked on every log line); rejects after `ms` or if the daemon exits. */
  waitFor(check, ms, what) {
    const waiting = new Promise((resolve, reject) => {
      const waiter = () => {
        let value;
        try {
          // No benchmark expects a file to fail, be rejected or vanish: waiting on would only hit the time bound.
          const lost = this.count('failed') + this.count('rejected') + this.count('removed');
          if (lost > 0) throw new Error(`${lost} file(s) failed, were rejected or removed while waiting for ${what}: ${this.describe()}`);
          value = check();
        } catch (error) {
          this.waiters.delete(waiter);
          return reject(error);
        }
        if (value) {
          this.waiters.delete(waiter);
          resolve(value);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.waiters.delete(waiter);
          reject(new Error(`the daemon exited (${this.child.exitCode ?? this.child.signalCode}) while waiting for ${what}: ${this.describe()}`));
        }
      };
      this.waiters.add(waiter);
      waiter();
    });
    return within(waiting, ms, `${what}; ${this.describe()}`);
  }

  ready(ms = 600_000) {
    return this.waitFor(() => this.readyAt, ms, 'ready');
  }

  describe() {
    const problems = this.problems.length ? ` problems: ${this.problems.slice(-5).join(' | ')};` : '';
    return `${problems} last output: ${this.tail.slice(-6).join('\n')}`;
  }

  /** A memory sample through the probe (SIGUSR2): VmRSS before and after a full GC. */
  async sample() {
    const pid = this.pid;
    const before = probeRecord(this.workspace.probeFile, 'sample', pid)?.t ?? 0;
    signal(pid, 'SIGUSR2', false);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await sleep(100);
      const record = probeRecord(this.workspace.probeFile, 'sample', pid);
      if (record && record.t > before) return record;
    }
    throw new Error('the memory probe did not answer SIGUSR2 within 10 s');
  }

  /** SIGTERM, wait for a clean exit; returns the exit status and the peak RSS (VmHWM) the probe read at exit. */
  async stop(ms = 60_000) {
    const pid = this.pid;
    if (pid) signal(pid, 'SIGTERM', false);
    let result;
    try {
      result = await within(this.exit, ms, 'the daemon to stop after SIGTERM');
    } catch (error) {
      signal(this.child.pid, 'SIGKILL', false);
      if (pid) signal(pid, 'SIGKILL', false);
      throw error;
    }
    const record = probeRecord(this.workspace.probeFile, 'exit', pid);
    return { ...result, hwmKb: record?.hwmKb, rssKb: record?.rssKb };
  }
}

/**
 * A long-running command whose stdout lines are collected (the burst
 * baseline). Started in its own process group, so that stopping it ends
 * the whole pipeline it runs (inotifywait, xargs, curl) and nothing else.
 */
export class LineProcess {
  constructor(command, args, { env } = {}) {
    this.child = register(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true }), true);
    this.lines = [];
    this.stderr = '';
    this.waiters = new Set();
    this.exit = exited(this.child);
    this.exit.then(() => this.notify());
    lines(this.child.stdout, (line) => {
      this.lines.push(line);
      this.notify();
    });
    this.child.stderr.setEncoding('utf8').on('data', (data) => {
      if (this.stderr.length < 100_000) this.stderr += data;
      this.notify();
    });
  }

  notify() {
    for (const waiter of this.waiters) waiter();
  }

  waitFor(check, ms, what) {
    const waiting = new Promise((resolve, reject) => {
      const waiter = () => {
        const value = check();
        if (value) {
          this.waiters.delete(waiter);
          resolve(value);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.waiters.delete(waiter);
          reject(new Error(`exited (${this.child.exitCode ?? this.child.signalCode}) while waiting for ${what}: ${this.stderr.slice(-2000)}`));
        }
      };
      this.waiters.add(waiter);
      waiter();
    });
    return within(waiting, ms, `${what}; stderr: ${this.stderr.slice(-1000)}`);
  }

  async stop() {
    signal(this.child.pid, 'SIGTERM', true);
    await within(this.exit, 10_000, 'the baseline to stop').catch(() => signal(this.child.pid, 'SIGKILL', true));
  }
}
