import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { aptProvide, debianMirror } from '../helpers/apt.js';

/**
 * A Debian bookworm booted under its own systemd (systemd-nspawn -b), for
 * testing what users run on a systemd host. The root file system is made
 * once with debootstrap and cached outside the repo; each boot runs on a
 * throw-away copy of it (--ephemeral), off the network (--private-network),
 * with the host's node and npm bound in read-only, as the installer needs
 * them. Commands run inside through nsenter into the container's PID 1.
 */

const CACHE = '/var/tmp/cryomix-watch-systemd';
/** What the root file system holds besides minbase. */
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'sudo'];
/** Raised with any change to how the root file system is made, so that a cached one of the old recipe is not used. */
const RECIPE = 2;
const SUITE = 'bookworm';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class ContainerUnavailable extends Error {}

function run(command: string, args: string[], timeoutMs = 600_000): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) return { status: null, stdout: '', stderr: String(result.error) };
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}


/** The cached root file system, made with debootstrap when missing (about a minute, some 250 MB). */
function rootFileSystem(): string {
  const name = `${SUITE}-${PACKAGES.join('+')}-${RECIPE}`;
  const root = join(CACHE, name);
  mkdirSync(CACHE, { recursive: true });
  // Other recipes' file systems, and throw-away copies (.#name…) a killed run left behind: about 250 MB each.
  for (const entry of readdirSync(CACHE)) {
    if (entry !== name && !entry.endsWith('.log')) rmSync(join(CACHE, entry), { recursive: true, force: true });
  }
  if (existsSync(join(root, '.complete'))) return root;
  const building = `${root}.new`;
  rmSync(building, { recursive: true, force: true });
  const made = run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, building, debianMirror()], 900_000);
  if (made.status !== 0) throw new ContainerUnavailable(`debootstrap failed: ${(made.stdout + made.stderr).trim().split('\n').slice(-3).join(' | ')}`);
  // npm as Debian's nodejs package lays it out; the files themselves are bound in from the host at boot.
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(building, 'usr/bin/npm'));
  // A studio machine's name, which sudo can resolve.
  writeFileSync(join(building, 'etc/hostname'), 'studio\n');
  writeFileSync(join(building, 'etc/hosts'), '127.0.0.1 localhost\n127.0.1.1 studio\n::1 localhost\n');
  writeFileSync(join(building, '.complete'), '');
  rmSync(root, { recursive: true, force: true });
  renameSync(building, root);
  return root;
}

/** A process's /proc file, or undefined once the process has ended (it may, between listing and reading). */
function procFile(pid: string | number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw error;
  }
}

/** The container's systemd: the child of systemd-nspawn that runs it. */
function containerInit(nspawn: number): number | undefined {
  const children = readdirSync('/proc').filter((name) => /^\d+$/.test(name) && /^PPid:\s*(\d+)$/m.exec(procFile(name, 'status') ?? '')?.[1] === String(nspawn));
  const init = children.find((pid) => procFile(pid, 'comm')?.trim() === 'systemd');
  return init === undefined ? undefined : Number(init);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Container {
  readonly #nspawn: ChildProcess;
  readonly #init: number;

  private constructor(nspawn: ChildProcess, init: number) {
    this.#nspawn = nspawn;
    this.#init = init;
  }

  /**
   * Boots the container with `binds` (host path → path inside, read-only)
   * and waits until its systemd says the boot is over. Throws
   * ContainerUnavailable, with the reason, where this machine cannot.
   */
  static async boot(name: string, binds: Record<string, string>): Promise<Container> {
    if (process.platform !== 'linux') throw new ContainerUnavailable('systemd-nspawn needs Linux');
    if (process.getuid?.() !== 0) throw new ContainerUnavailable('booting a container needs root');
    const tools = aptProvide(['systemd-nspawn', 'debootstrap', 'nsenter', 'setpriv'], ['systemd-container', 'debootstrap', 'util-linux']);
    if (tools !== undefined) throw new ContainerUnavailable(tools);
    const root = rootFileSystem();
    const consoleLog = join(CACHE, `${name}.console.log`);
    const bound = { '/usr/bin/node': process.execPath, '/usr/lib/node_modules/npm': npmDirectory(), ...binds };
    const args = [
      // Should this test process die, nspawn is told to power the container off, which also removes its throw-away copy.
      '--pdeathsig', 'TERM', '--', 'systemd-nspawn',
      '--quiet', '--ephemeral', `--directory=${root}`, '--boot', `--machine=${name}`, '--console=read-only',
      // No D-Bus or machined on the host is needed: the container lives in this process's own cgroup.
      '--register=no', '--keep-unit',
      '--private-network',
      ...Object.entries(bound).map(([inside, host]) => `--bind-ro=${host}:${inside}`),
    ];
    // setpriv sets the death signal, then becomes systemd-nspawn (exec): the pid is nspawn's.
    const nspawn = spawn('setpriv', args, { stdio: ['ignore', openSync(consoleLog, 'w'), 'pipe'] });
    let stderr = '';
    nspawn.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
    const deadline = Date.now() + 180_000;
    let container: Container | undefined;
    try {
      // --ephemeral first copies the whole root file system (a plain directory here, not a snapshot).
      let init: number | undefined;
      while (init === undefined && nspawn.exitCode === null && Date.now() < deadline) {
        init = containerInit(nspawn.pid!);
        if (init === undefined) await sleep(200);
      }
      if (init === undefined) throw new ContainerUnavailable(`systemd-nspawn did not boot the container: ${stderr.trim() || lastLines(consoleLog)}`);
      container = new Container(nspawn, init);
      // Until systemd has made its own socket, systemctl cannot ask it anything ("Failed to connect to bus").
      let booted = container.sh('systemctl is-system-running --wait', { timeoutMs: 120_000 });
      while (booted.stdout.trim() === '' && Date.now() < deadline) {
        await sleep(200);
        booted = container.sh('systemctl is-system-running --wait', { timeoutMs: 120_000 });
      }
      if (!['running', 'degraded'].includes(booted.stdout.trim())) {
        throw new ContainerUnavailable(`the container's systemd did not finish booting (${booted.stdout.trim() || booted.stderr.trim()}): ${lastLines(consoleLog)}`);
      }
      return container;
    } catch (error) {
      if (container) await container.stop();
      else await killAndWait(nspawn);
      throw error;
    }
  }

  /** `script` run by bash as root inside the container, with a clean environment, as a login shell on the box would. */
  sh(script: string, options: { timeoutMs?: number } = {}): Run {
    return run('nsenter', ['-t', String(this.#init), '-a', '--', '/usr/bin/env', '-i', `PATH=${PATH}`, 'HOME=/root', 'LANG=C.UTF-8', '/bin/bash', '-c', script], options.timeoutMs ?? 120_000);
  }

  /** A path inside the container, as seen from the host (the container's own mounts, /tmp included). */
  hostPath(inside: string): string {
    return join(`/proc/${this.#init}/root`, inside);
  }

  /**
   * Powers the container off; one that does not go within a minute has its
   * systemd killed, which nspawn notices, removing the throw-away copy.
   * nspawn itself is killed only as the last resort.
   */
  async stop(): Promise<void> {
    if (this.#nspawn.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#nspawn.once('exit', resolve));
    this.sh('systemctl poweroff', { timeoutMs: 10_000 });
    const killInit = setTimeout(() => killIfAlive(this.#init), 60_000);
    const killNspawn = setTimeout(() => this.#nspawn.kill('SIGKILL'), 75_000);
    await exited;
    clearTimeout(killInit);
    clearTimeout(killNspawn);
  }
}

function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    // Already gone: nspawn is on its way out too.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

function lastLines(file: string): string {
  return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
}

/** npm as Node's own packages lay it out beside the binary (…/bin/node, …/lib/node_modules/npm), bound in beside the host's node. */
function npmDirectory(): string {
  const directory = join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm');
  if (!existsSync(join(directory, 'bin', 'npm-cli.js'))) throw new ContainerUnavailable(`npm is not beside ${process.execPath} (looked in ${directory}); the installer needs npm`);
  return directory;
}
