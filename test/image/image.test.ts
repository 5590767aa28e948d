import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { waitUntil } from '../helpers/daemon.js';
import { ensureBaseImages, podman, podmanUnavailable, RUN_FLAGS } from './podman.js';
import { freePort } from '../helpers/ports.js';

/**
 * `npm run test:image`: the Containerfile built with podman and run as a NAS
 * user would run it (compose.yaml's settings): a non-root uid, a read-only
 * root with a tmpfs /tmp, the key as a secret file, /config, /state and the
 * watched folder as volumes. The sandbox runs here, outside the container.
 */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = 'localhost/cryomix-watch:test';
const NAME = 'cryomix-watch-image-test';
const UID = 1234;
const GRACE_SECONDS = 5;

const unavailable = podmanUnavailable();
if (unavailable !== undefined) console.log(`image tests: ${unavailable}`);

let sandbox: Sandbox;
let dir: string;
/** The rows once the first file is done, to compare after a restart. */
let afterUpload: ReturnType<typeof listed> = [];
const figures: Record<string, string> = {};

/** The container as compose.yaml runs it. */
function runContainer(name: string, extra: string[] = []): string {
  const started = podman([
    'run', '-d', '--name', name, ...RUN_FLAGS,
    '--user', `${UID}:${UID}`, '--read-only', '--tmpfs', '/tmp',
    '-v', `${join(dir, 'config')}:/config`, '-v', `${join(dir, 'state')}:/state`, '-v', `${join(dir, 'inbox')}:/watch/inbox`,
    '-v', `${join(dir, 'cryomix-api-key')}:/run/secrets/cryomix-api-key:ro`,
    ...extra, IMAGE,
  ]);
  if (started.status !== 0) throw new Error(`podman run failed: ${started.stderr.trim()}`);
  return name;
}

const logsOf = (name: string) => {
  const logs = podman(['logs', name]);
  return (logs.stdout + logs.stderr).slice(-3000);
};

async function healthy(name: string): Promise<number> {
  const from = performance.now();
  await waitUntil(() => podman(['healthcheck', 'run', name]).status === 0, 30_000, () => `not healthy within 30 s:\n${logsOf(name)}`);
  return performance.now() - from;
}

/** What `list --json` says inside the container. */
function listed(name: string): { path: string; state: string; sessionId: string }[] {
  const list = podman(['exec', name, 'cryomix-watch', 'list', '--json']);
  if (list.status !== 0) throw new Error(`list failed: ${list.stderr}`);
  return JSON.parse(list.stdout) as { path: string; state: string; sessionId: string }[];
}


describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('the container image (podman; skipped outside CI where podman cannot be had)', () => {
  beforeAll(async () => {
    if (unavailable !== undefined) throw new Error(unavailable);
    ensureBaseImages((line) => console.log(line));
    const from = performance.now();
    const built = podman(['build', '--pull=never', '--network', 'host', '--format', 'docker', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '-f', 'Containerfile', '-t', IMAGE, REPO], 900_000);
    if (built.status !== 0) throw new Error(`podman build failed:\n${(built.stdout + built.stderr).slice(-3000)}`);
    figures.build = `${Math.round((performance.now() - from) / 1000)} s`;
    sandbox = await startSandbox();
    dir = mkdtempSync(join(tmpdir(), 'cryomix-image-'));
    for (const sub of ['config', 'state', 'inbox']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'cryomix-api-key'), `${sandbox.apiKey}\n`);
    chmodSync(join(dir, 'cryomix-api-key'), 0o600);
    for (const path of ['.', 'config', 'state', 'inbox', 'cryomix-api-key']) chownSync(join(dir, path), UID, UID);
    podman(['rm', '-f', NAME]);
  });

  afterAll(async () => {
    podman(['rm', '-f', NAME]);
    // Each build leaves its build stage behind as an untagged image of about 1 GB.
    podman(['image', 'prune', '-f']);
    await sandbox?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`image figures: ${JSON.stringify(figures)}`);
  });

  it('on a first start without a config, writes the commented example into /config and exits 78, saying what to edit', () => {
    const first = podman(['run', '--rm', ...RUN_FLAGS, '--user', `${UID}:${UID}`, '--read-only', '--tmpfs', '/tmp', '-v', `${join(dir, 'config')}:/config`, IMAGE]);
    expect(first.status).toBe(78);
    expect(first.stderr).toMatch(/no config yet: wrote an example to \/config\/config\.yaml; set folders\[\]\.path/);
    const example = readFileSync(join(dir, 'config', 'config.yaml'), 'utf8');
    expect(example).toContain('database: /state/state.db');
    expect(example).toMatch(/^# cryomix-watch in a container/);
  });

  it('is healthy within 30 s as the configured non-root user, on a read-only root', async () => {
    const port = await freePort();
    writeFileSync(
      join(dir, 'config', 'config.yaml'),
      JSON.stringify({
        api: { baseUrl: sandbox.url, uploadOrigins: [sandbox.storageOrigin], authRecheckSeconds: 1 },
        state: { database: '/state/state.db' },
        uploads: { minBytes: 1000, shutdownGraceSeconds: GRACE_SECONDS },
        folders: [{ path: '/watch/inbox', settleSeconds: 0.5 }],
        http: { listen: `127.0.0.1:${port}` },
      }),
    );
    runContainer(NAME);
    figures.healthyMs = String(Math.round(await healthy(NAME)));
    expect(podman(['exec', NAME, 'id', '-u']).stdout.trim()).toBe(String(UID));
    expect(podman(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', NAME]).stdout.trim()).toBe('true');
  });

  it('stores a WAV dropped into the mounted folder, byte-exact, in the sandbox outside the container', async () => {
    const bytes = pcmWav(300_000);
    writeFileSync(join(dir, 'inbox', 'Night Drive.wav'), bytes);
    chownSync(join(dir, 'inbox', 'Night Drive.wav'), UID, UID);
    await waitUntil(() => listed(NAME).some((job) => job.state === 'done'), 30_000, () => logsOf(NAME));
    afterUpload = listed(NAME);
    const stored = sandbox.objects();
    expect(stored.map((object) => object.sha256)).toEqual([createHash('sha256').update(bytes).digest('hex')]);
    const pid = podman(['inspect', '--format', '{{.State.Pid}}', NAME]).stdout.trim();
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    figures.idleRssMB = (Number(rss) / 1024).toFixed(0);
  });

  it(`stops on SIGTERM with exit status 0 within the grace period (${GRACE_SECONDS} s)`, () => {
    const from = performance.now();
    expect(podman(['stop', '-t', String(GRACE_SECONDS + 25), NAME]).status).toBe(0);
    const stopMs = performance.now() - from;
    figures.stopMs = String(Math.round(stopMs));
    expect(podman(['inspect', '--format', '{{.State.ExitCode}}', NAME]).stdout.trim()).toBe('0');
    expect(stopMs).toBeLessThan(GRACE_SECONDS * 1000);
  });

  it('keeps its history across a restart and uploads nothing again', async () => {
    expect(podman(['start', NAME]).status).toBe(0);
    await healthy(NAME);
    // A pass over the folder has compared the file with the database by the time it is healthy; give the scheduler a moment too.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(listed(NAME)).toEqual(afterUpload);
    expect(sandbox.objects()).toHaveLength(1);
    expect(sandbox.requests().filter((request) => request.endpoint === 'multi-upload')).toHaveLength(1);
  });

  it('is of a size and memory fit for a NAS', () => {
    const size = Number(podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE]).stdout.trim());
    figures.imageMB = (size / 1e6).toFixed(0);
    expect(size).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'state', 'state.db'))).toBe(true);
  });
});
