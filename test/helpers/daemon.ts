import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { listRows } from '../../src/cli/list.js';
import { loadConfig } from '../../src/config/index.js';
import type { JobView } from '../../src/report/jobView.js';
import { startSandbox as startSandboxServer, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js';
import { useSandbox } from './servers.js';
import { useTempDir } from './tempDir.js';

/** The built CLI, exactly as users run it (`npm test` builds first). */
export const CLI = fileURLToPath(new URL('../../dist/cli/bin.cjs', import.meta.url));

export interface Workspace {
  dir: string;
  inbox: string;
  configFile: string;
  database: string;
  env: NodeJS.ProcessEnv;
}

export interface WorkspaceOptions {
  folder?: Record<string, unknown>;
  uploads?: Record<string, unknown>;
  api?: Record<string, unknown>;
  apiKey?: string;
  /** The health/metrics/status listener section, absent by default. */
  http?: Record<string, unknown>;
}

/**
 * A config pointing at `sandbox`, with delays shrunk so a test takes seconds
 * (restic's TestFastRetries idea): settle 0.3 s, retries from 0.2 s, stalls after 3 s.
 */
export function createWorkspace(dir: string, sandbox: Sandbox, options: WorkspaceOptions = {}): Workspace {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  const inbox = join(dir, 'inbox');
  mkdirSync(inbox, { recursive: true });
  const database = join(dir, 'state', 'state.db');
  const config = {
    api: { baseUrl: sandbox.url, uploadOrigins: [sandbox.storageOrigin], authRecheckSeconds: 0.3, requestTimeoutSeconds: 5, ...options.api },
    state: { database },
    uploads: {
      minBytes: 1000,
      // Short, yet long enough that a busy shared machine answering late is not taken for a stall.
      stallTimeoutSeconds: 3,
      shutdownGraceSeconds: 2,
      retry: { initialDelaySeconds: 0.2, maxDelaySeconds: 1 },
      ...options.uploads,
    },
    folders: [{ path: inbox, settleSeconds: 0.3, ...options.folder }],
    log: { level: 'debug' },
    ...(options.http ? { http: options.http } : {}),
  };
  const configFile = join(dir, 'config.yaml');
  // JSON is YAML; this keeps the test free of a YAML writer.
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const env = { ...process.env, CRYOMIX_API_KEY: options.apiKey ?? sandbox.apiKey, CRYOMIX_WATCH_CONFIG: undefined, CREDENTIALS_DIRECTORY: undefined };
  return { dir, inbox, configFile, database, env };
}

/** Rewrites the workspace's config file (JSON is YAML) with `change` applied. */
export function editConfig(workspace: Workspace, change: (config: { folders: Record<string, unknown>[] } & Record<string, unknown>) => void): void {
  const config = JSON.parse(readFileSync(workspace.configFile, 'utf8'));
  change(config);
  writeFileSync(workspace.configFile, JSON.stringify(config, null, 2));
}

export type LogRecord = Record<string, unknown> & { msg?: string; level?: number };

/** `cryomix-watch run` as a child process; its JSON log lines are parsed as they arrive. */
export class DaemonProcess {
  readonly logs: LogRecord[] = [];
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  /** `umask` as systemd's UMask= would set it, e.g. '077'. */
  constructor(workspace: Workspace, args: string[] = [], options: { uid?: number; gid?: number; maxOpenFiles?: number; umask?: string } = {}) {
    const command = [process.execPath, CLI, 'run', '--config', workspace.configFile, ...args];
    // Limits and the umask are set by the shell that then becomes the daemon (exec), so the pid stays the daemon's.
    const setup = [
      ...(options.maxOpenFiles === undefined ? [] : [`ulimit -n ${options.maxOpenFiles}`]),
      ...(options.umask === undefined ? [] : [`umask ${options.umask}`]),
    ];
    const [file, ...argv] = setup.length === 0 ? command : ['bash', '-c', `${setup.join(' && ')} && exec "$@"`, 'daemon', ...command];
    const identity = options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid };
    this.child = spawn(file!, argv, { env: workspace.env, stdio: ['ignore', 'pipe', 'pipe'], ...identity });
    let pending = '';
    this.child.stdout!.on('data', (data: Buffer) => {
      this.output += data.toString();
      pending += data.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim()) this.logs.push(JSON.parse(line) as LogRecord);
    });
    this.child.stderr!.on('data', (data: Buffer) => {
      this.output += data.toString();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log record (past or future) that `match` accepts. */
  waitForLog(match: (record: LogRecord) => boolean, timeoutMs = 15_000): Promise<LogRecord> {
    return waitUntil(() => this.logs.find(match), timeoutMs, () => `no matching log line; output so far:\n${this.output}`);
  }

  ready(): Promise<LogRecord> {
    return this.waitForLog((r) => r.msg === 'ready');
  }

  /** Sends a signal that does not stop the daemon (SIGHUP). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return this.exited;
  }
}

/**
 * Sandboxes and daemons that are stopped after each test, whatever its outcome:
 * every daemon it started is killed (SIGKILL; harmless for one the test already
 * stopped), then every sandbox it started is closed. Call it at the top of the
 * file or describe, after any hook whose teardown must run only once the daemons
 * are dead (vitest runs afterEach hooks in reverse order of registration).
 */
export function useDaemons(): {
  startSandbox(options?: SandboxOptions): Promise<Sandbox>;
  startDaemon(...args: ConstructorParameters<typeof DaemonProcess>): DaemonProcess;
} {
  const daemons: DaemonProcess[] = [];
  const sandboxes: Sandbox[] = [];
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.stop('SIGKILL')));
    await Promise.all(sandboxes.splice(0).map((sandbox) => sandbox.close()));
  });
  return {
    async startSandbox(options) {
      const sandbox = await startSandboxServer(options);
      sandboxes.push(sandbox);
      return sandbox;
    },
    startDaemon(...args) {
      const daemon = new DaemonProcess(...args);
      daemons.push(daemon);
      return daemon;
    },
  };
}

/**
 * A sandbox and a workspace pointing at it, fresh for each test, on top of
 * useTempDir and useDaemons (their tempDir and startDaemon are passed on).
 * The sandbox and workspace returned are refilled before each test (see
 * servers.ts). Call it where useDaemons would be called.
 */
export function useWorkspace(): {
  sandbox: Sandbox;
  workspace: Workspace;
  tempDir: () => string;
  startDaemon: ReturnType<typeof useDaemons>['startDaemon'];
} {
  const tempDir = useTempDir();
  // Before useDaemons, so that the sandbox is closed only once the daemons are dead.
  const sandbox = useSandbox();
  const { startDaemon } = useDaemons();
  const workspace = {} as Workspace;
  beforeEach(() => {
    Object.assign(workspace, createWorkspace(tempDir(), sandbox));
  });
  return { sandbox, workspace, tempDir, startDaemon };
}

/**
 * Runs a CLI command to completion, synchronously. Only for commands that
 * never call the API: a blocked test process cannot serve its in-process sandbox.
 */
export function runCli(workspace: Workspace, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args, '--config', workspace.configFile], { env: { ...workspace.env, ...env }, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a CLI command that may call the API (upload, check) without blocking the in-process sandbox. */
export function runCliAsync(workspace: Workspace, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--config', workspace.configFile], { env: { ...workspace.env, ...env }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * What `list --json` prints, read by the same code in this process. Tests
 * poll this many times a second: spawning the CLI for each poll blocked this
 * process (and the sandbox it serves) for a Node start each time, which
 * starved the daemon's uploads on a busy machine.
 */
export async function listJobs(workspace: Workspace): Promise<JobView[]> {
  return JSON.parse(JSON.stringify(await listRows(loadConfig(workspace.configFile)))) as JobView[];
}

export async function jobFor(workspace: Workspace, path: string): Promise<JobView | undefined> {
  return (await listJobs(workspace)).find((job) => job.path === path);
}

/** Waits until the file's row is in `state`, and returns that row as it was read (one read: no race with the next transition). */
export function waitForState(workspace: Workspace, path: string, state: string, timeoutMs?: number, describe?: () => string | Promise<string>): Promise<JobView> {
  return waitUntil(async () => {
    const job = await jobFor(workspace, path);
    return job?.state === state && job;
  }, timeoutMs, describe);
}

/**
 * Polls `probe` until it returns something truthy; fails with `describe()` after the timeout.
 * A probe that runs the CLI must be async (runCliAsync): this process serves the sandbox.
 */
export async function waitUntil<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 15_000, describe?: () => string | Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${describe ? `: ${await describe()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
