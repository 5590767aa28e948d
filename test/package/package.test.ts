import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { packAndInstall } from '../helpers/npmPackage.js';

/**
 * `npm run test:package`: what `npm pack` makes, installed as a user installs
 * it (`npm install -g`, into a prefix of its own), then used: the command,
 * the native SQLite binding, an upload to the embedded sandbox, and the
 * systemd installer run from the installed package into a DESTDIR
 * (`npm run test:systemd` runs it under a live systemd).
 */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * 1024 * 1024, cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env } });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? String(result.error ?? '') };
}

describe('the npm package', () => {
  let work: string;
  let prefix: string;
  let installed: string;
  const command = () => join(prefix, 'bin', 'cryomix-watch');

  // One install for every check, kept until the last one (a per-test temp dir would be gone after the first).
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cryomix-package-'));
    ({ prefix, installed } = packAndInstall(work));
  }, 900_000);

  it('holds the built code, the example config and the systemd files, and no tests or sources', () => {
    expect(readdirSync(installed).sort()).toEqual(['README.md', 'config', 'dist', 'node_modules', 'package.json', 'systemd']);
    expect(readdirSync(join(installed, 'systemd')).sort()).toEqual(['cryomix-watch.service', 'install.sh']);
    for (const dev of ['vitest', 'typescript', 'playwright-core']) expect(readdirSync(join(installed, 'node_modules'))).not.toContain(dev);
  });

  it('gives a working cryomix-watch command: its version, the SQLite binding, and an upload to the embedded sandbox', () => {
    expect(run(command(), ['--version']).stdout.trim()).toBe(VERSION);
    const site = join(work, 'site');
    mkdirSync(join(site, 'inbox'), { recursive: true });
    writeFileSync(join(site, 'config.yaml'), 'state:\n  database: ./state.db\nuploads:\n  minBytes: 1000\nfolders:\n  - path: ./inbox\n');
    const mix = join(site, 'inbox', 'mix.wav');
    writeFileSync(mix, pcmWav(50_000));
    const upload = run(command(), ['upload', '--sandbox', '--config', 'config.yaml', mix], { cwd: site });
    expect(upload.status, upload.stderr).toBe(0);
    const listed = JSON.parse(run(command(), ['list', '--json', '--config', 'config.yaml'], { cwd: site }).stdout) as { path: string; state: string }[];
    expect(listed).toEqual([expect.objectContaining({ path: mix, state: 'done' })]);
  });

  it('installs the systemd service from the installed package (into a DESTDIR)', () => {
    const destdir = join(work, 'root');
    mkdirSync(join(destdir, 'etc', 'cryomix-watch'), { recursive: true });
    writeFileSync(join(destdir, 'etc', 'cryomix-watch', 'config.yaml'), `folders:\n  - path: ${join(work, 'site', 'inbox')}\n`);
    const installer = run('bash', [join(installed, 'systemd', 'install.sh'), '--prefix', '/usr'], { env: { DESTDIR: destdir } });
    expect(installer.status, installer.stderr).toBe(0);
    const app = join(destdir, 'usr', 'lib', 'cryomix-watch');
    expect(run(process.execPath, [join(app, 'dist', 'cli', 'bin.cjs'), '--version']).stdout.trim()).toBe(VERSION);
    expect(readFileSync(join(destdir, 'usr', 'bin', 'cryomix-watch'), 'utf8')).toContain('/usr/lib/cryomix-watch/dist/cli/bin.cjs "$@"');
    expect(readFileSync(join(destdir, 'usr', 'lib', 'systemd', 'system', 'cryomix-watch.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/bin\/cryomix-watch run/m);
  });
});
