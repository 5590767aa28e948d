import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from './audio.js';
import { bindMountUnavailable, useBindMounts } from './bindMounts.js';
import { createWorkspace, editConfig, useDaemons, type DaemonProcess, type Workspace } from './daemon.js';
import type { PostgresServer } from './postgres.js';
import { useStoragePuts, type PutRecorder } from './storagePuts.js';
import { useTempDir } from './tempDir.js';

/*
 * Several daemons, one share, one queue (issue 18): machines that each run
 * a daemon as a child process with a config of its own, mount one directory
 * (the NAS) at a path of their own with `mount --bind`, and keep their
 * queue in one PostgreSQL database. One sandbox serves them all, so every
 * Session-Id, stored object and PUT is counted in one place. Root only.
 */

export const SHARE = 'exports';

/** One machine: its workspace and config, the share mounted at its own path, and every daemon it has run. */
export interface Machine {
  name: string;
  workspace: Workspace;
  runs: DaemonProcess[];
  /** The daemon it runs now (its last). */
  readonly daemon: DaemonProcess;
}

/** A file dropped on the share: its name there and its bytes' digest. */
export interface Dropped {
  name: string;
  sha256: string;
}

export interface Cluster {
  sandbox: Sandbox;
  machines: Machine[];
  puts: PutRecorder;
  dropped: Dropped[];
  /** Writes `count` mixes of `minBytes`–`maxBytes` onto the share (its disk, as another machine would), each at once; returns their names. */
  drop(count: number, minBytes: number, maxBytes: number): string[];
  /** Writes `count` mixes of `bytes` as a copy over the network does: each in `pieces`, with a pause after each piece. */
  copyIn(count: number, bytes: number, pieces: number, pauseMs: number): Promise<void>;
  /** Rows read straight from the database, on a connection of the test's own. */
  sql<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** Starts the machine's daemon (again, after a kill) and waits until it is ready. */
  start(machine: Machine): Promise<void>;
  /**
   * Waits until every dropped file's row is done, or `timeoutMs` has
   * passed; then it says which rows are not done, and returns all the same:
   * an audit counts what is missing.
   */
  allDone(timeoutMs: number): Promise<void>;
  /** Stops every machine's daemon with SIGTERM; each one's exit, as `a: exit 0`. */
  stopAll(): Promise<string[]>;
}

export interface ClusterOptions {
  /** Names the machines and their daemons. */
  machines: readonly string[];
  /** The API key the sandbox takes and the daemons send. */
  apiKey: string;
  settleSeconds: number;
  /** The port this machine reaches PostgreSQL on (a proxy's), instead of the server's own. */
  portOf?: (machine: string) => number;
  /** This machine's `uploads` settings beyond createWorkspace's. */
  uploadsOf?: (machine: string) => Record<string, unknown>;
  /** The machines whose daemons start now; the others wait for `start`. Default: all. */
  startNow?: readonly string[];
}

/**
 * Clusters on `server`, each in a fresh database; after each test their
 * daemons are killed, then the PUT recorders stopped, the mounts unmounted
 * and the directories removed, whatever happened.
 */
export function useSharedQueue(server: PostgresServer): { startCluster(random: () => number, options: ClusterOptions): Promise<Cluster> } {
  const tempDir = useTempDir('cryomix-shared-queue-');
  // Registered in this order so that the daemons die first (vitest runs afterEach hooks last-registered first).
  const bindMounts = useBindMounts();
  const recordPuts = useStoragePuts();
  const { startSandbox, startDaemon } = useDaemons();
  let databases = 0;

  return {
    async startCluster(random, options) {
      const noMounts = bindMountUnavailable();
      if (noMounts !== undefined) throw new Error(`cannot mount the share at several paths: ${noMounts}`);
      const url = await server.createDatabase(`shared_queue_${++databases}`);
      const sandbox = await startSandbox({ apiKey: options.apiKey });
      const puts = recordPuts(sandbox);
      const disk = join(tempDir(), 'nas-disk');
      mkdirSync(disk);

      const machines = options.machines.map((name): Machine => {
        const workspace = createWorkspace(tempDir(), sandbox, { apiKey: options.apiKey, uploads: options.uploadsOf?.(name) ?? {} });
        // Each machine mounts the share somewhere else: only the share's name ties their rows together.
        const folder = join(workspace.dir, 'mnt', `studio-${name}`, SHARE);
        bindMounts.mount(disk, folder);
        const machineUrl = new URL(url);
        if (options.portOf) machineUrl.port = String(options.portOf(name));
        editConfig(workspace, (config) => {
          config.state = { postgres: { url: machineUrl.href } };
          config.folders = [{ path: folder, share: SHARE, settleSeconds: options.settleSeconds }];
        });
        workspace.env.PGPASSWORD = server.password;
        const runs: DaemonProcess[] = [];
        return {
          name,
          workspace,
          runs,
          get daemon() {
            return runs.at(-1)!;
          },
        };
      });

      const start = async (machine: Machine) => {
        machine.runs.push(startDaemon(machine.workspace));
        await machine.daemon.ready();
      };
      await Promise.all(machines.filter((machine) => (options.startNow ?? options.machines).includes(machine.name)).map(start));

      const withPassword = new URL(url);
      withPassword.password = server.password;
      const sql = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => {
        // A connection per question: one kept open would be cut by a restart of the server.
        const client = new pg.Client({ connectionString: withPassword.href });
        await client.connect();
        try {
          return (await client.query<R>(text, values)).rows;
        } finally {
          await client.end();
        }
      };
      const dropped: Dropped[] = [];
      const nextMix = (size: number) => {
        const name = `mix ${dropped.length + 1}.wav`;
        const bytes = pcmWav(size);
        dropped.push({ name, sha256: createHash('sha256').update(bytes).digest('hex') });
        return { name, bytes };
      };

      return {
        sandbox,
        machines,
        puts,
        dropped,
        sql,
        start,
        drop(count, minBytes, maxBytes) {
          return Array.from({ length: count }, () => {
            const { name, bytes } = nextMix(minBytes + Math.floor(random() * (maxBytes - minBytes + 1)));
            writeFileSync(join(disk, name), bytes);
            return name;
          });
        },
        async copyIn(count, size, pieces, pauseMs) {
          for (let n = 0; n < count; n++) {
            const { name, bytes } = nextMix(size);
            const file = await open(join(disk, name), 'w');
            try {
              for (let piece = 0; piece < pieces; piece++) {
                await file.write(bytes.subarray(Math.floor((piece * bytes.length) / pieces), Math.floor(((piece + 1) * bytes.length) / pieces)));
                await sleep(pauseMs);
              }
            } finally {
              await file.close();
            }
          }
        },
        async allDone(timeoutMs) {
          const names = dropped.map((file) => file.name);
          const done = async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE current AND state = 'done' AND rel_path = ANY($1)`, [names]))[0]!.n;
          const deadline = Date.now() + timeoutMs;
          while ((await done()) < names.length) {
            if (Date.now() > deadline) {
              const stuck = await sql(`SELECT rel_path, state, owner_pid, lease_until, error FROM jobs WHERE NOT (current AND state = 'done') ORDER BY id LIMIT 10`);
              console.log(`not done after ${timeoutMs} ms: ${JSON.stringify(stuck)}`);
              return;
            }
            await sleep(100);
          }
        },
        stopAll() {
          return Promise.all(machines.map(async (machine) => `${machine.name}: ${exitText(await machine.daemon.stop('SIGTERM'))}`));
        },
      };
    },
  };
}

export const exitText = ({ code, signal }: { code: number | null; signal: NodeJS.Signals | null }): string => (signal === null ? `exit ${code}` : signal);

/** Fills with a line for each of these machines' daemons that exits from now on, while it is still the machine's daemon. */
export function watchExits(machines: readonly Machine[]): string[] {
  const exits: string[] = [];
  for (const machine of machines) {
    const daemon = machine.daemon;
    void daemon.exited.then((exit) => {
      if (machine.daemon === daemon) exits.push(`${machine.name}: ${exitText(exit)}: ${daemon.logs.findLast((log) => (log.level ?? 0) >= 50)?.msg ?? 'no error logged'}`);
    });
  }
  return exits;
}

/** Uploads a machine's daemons made (over all their runs), by their transition log lines; only of the files named in `names` when given. */
export function uploadsBy(machine: Machine, names?: ReadonlySet<string>): number {
  return machine.runs
    .flatMap((run) => run.logs)
    .filter((log) => log.event === 'transition' && log.from === 'uploading' && log.to === 'uploaded')
    .filter((log) => names === undefined || names.has(basename(String(log.file)))).length;
}
