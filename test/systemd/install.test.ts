import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { aptProvide } from '../helpers/apt.js';
import { useTempDir } from '../helpers/tempDir.js';
import { analyzeUnavailable, shippedUnitRunnable } from './analyze.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL = join(REPO, 'systemd', 'install.sh');
const EXAMPLE_CONFIG = readFileSync(join(REPO, 'config', 'config.example.yaml'), 'utf8');

function install(destdir: string, args: string[] = []) {
  const run = spawnSync('bash', [INSTALL, ...args], {
    env: { ...process.env, DESTDIR: destdir, NODE: process.execPath },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (run.status !== 0) throw new Error(`install.sh ${args.join(' ')} exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
  return run;
}

/** Every entry under `root`: type, permission bits, and the bytes (or link target). Times are left out. */
function snapshot(root: string): Map<string, string> {
  const entries = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      const mode = (stat.mode & 0o7777).toString(8);
      const relative = path.slice(root.length);
      if (stat.isSymbolicLink()) entries.set(relative, `link ${readlinkSync(path)}`);
      else if (stat.isDirectory()) {
        entries.set(relative, `dir ${mode}`);
        walk(path);
      } else entries.set(relative, `file ${mode} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
    }
  };
  walk(root);
  return entries;
}

function modeOf(path: string): string {
  return (lstatSync(path).mode & 0o777).toString(8);
}

function settings(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('systemd/install.sh into a DESTDIR', () => {
  const tempDir = useTempDir('cryomix-install-');
  let built = '';

  beforeAll(() => {
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run "npm run build" first (npm test does)');
    built = readFileSync(join(REPO, 'dist', 'cli', 'bin.cjs'), 'utf8');
  });

  /** A site: a config with two folders, one moving uploads to a sibling folder on the same file system. */
  function site() {
    const dir = tempDir();
    const destdir = join(dir, 'root');
    const studio = join(dir, 'studio');
    const mixes = join(dir, 'mixes two');
    for (const folder of [join(studio, 'exports'), join(studio, 'uploaded'), mixes]) mkdirSync(folder, { recursive: true });
    const config = JSON.stringify({
      folders: [{ path: join(studio, 'exports'), afterUpload: 'move', moveTo: join(studio, 'uploaded') }, { path: mixes }],
    });
    mkdirSync(join(destdir, 'etc', 'cryomix-watch'), { recursive: true });
    writeFileSync(join(destdir, 'etc', 'cryomix-watch', 'config.yaml'), config);
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, 'test-key-123\n', { mode: 0o644 });
    return { dir, destdir, studio, mixes, config, keyFile };
  }

  it('installs the app, launcher, user, config, key, unit and drop-in, the same tree on a second run', () => {
    const { dir, destdir, studio, mixes, config, keyFile } = site();
    const first = install(destdir, ['--prefix', '/usr', '--api-key-file', keyFile]);
    const at = (path: string) => join(destdir, path);

    // The app: built code, production dependencies only, and it runs from there.
    expect(readFileSync(at('usr/lib/cryomix-watch/dist/cli/bin.cjs'), 'utf8')).toBe(built);
    expect(existsSync(at('usr/lib/cryomix-watch/package.json'))).toBe(true);
    for (const runtime of ['better-sqlite3', 'koffi', 'p-queue', 'undici']) expect(existsSync(at(`usr/lib/cryomix-watch/node_modules/${runtime}`)), runtime).toBe(true);
    for (const dev of ['vitest', 'typescript', 'playwright-core', '@types']) expect(existsSync(at(`usr/lib/cryomix-watch/node_modules/${dev}`)), dev).toBe(false);
    const version = spawnSync(process.execPath, [at('usr/lib/cryomix-watch/dist/cli/bin.cjs'), '--version'], { encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);

    expect(modeOf(at('usr/bin/cryomix-watch'))).toBe('755');
    expect(readFileSync(at('usr/bin/cryomix-watch'), 'utf8')).toContain(`exec ${process.execPath} /usr/lib/cryomix-watch/dist/cli/bin.cjs "$@"`);
    expect(readFileSync(at('usr/lib/sysusers.d/cryomix-watch.conf'), 'utf8')).toMatch(/^u cryomix-watch - ".*" \/var\/lib\/cryomix-watch\n$/);
    // As systemd-sysusers reads it on the host (it refused a colon in the description, and the installer stopped there);
    // --dry-run came with systemd 250. npm run test:systemd runs the real thing.
    if (spawnSync('systemd-sysusers', ['--help'], { encoding: 'utf8' }).stdout?.includes('--dry-run')) {
      const sysusers = spawnSync('systemd-sysusers', [`--root=${destdir}`, '--dry-run', at('usr/lib/sysusers.d/cryomix-watch.conf')], { encoding: 'utf8' });
      expect([sysusers.status, sysusers.stderr]).toEqual([0, expect.stringContaining("Creating user 'cryomix-watch'")]);
    }

    // The site's config is never replaced; the key is private.
    expect(readFileSync(at('etc/cryomix-watch/config.yaml'), 'utf8')).toBe(config);
    expect(modeOf(at('etc/cryomix-watch/api-key'))).toBe('600');
    expect(readFileSync(at('etc/cryomix-watch/api-key'), 'utf8')).toBe('test-key-123\n');

    const unit = readFileSync(at('usr/lib/systemd/system/cryomix-watch.service'), 'utf8');
    expect(unit).toContain('\nExecStart=/usr/bin/cryomix-watch run --config /etc/cryomix-watch/config.yaml\n');
    expect(unit.replace(/\nExecStart=.*\n/, '\n')).toBe(readFileSync(join(REPO, 'systemd', 'cryomix-watch.service'), 'utf8').replace(/\nExecStart=.*\n/, '\n'));

    // The moveTo beside the root is one entry with it, or every move is an EXDEV copy.
    const dropIn = readFileSync(at('etc/systemd/system/cryomix-watch.service.d/10-folders.conf'), 'utf8');
    expect(settings(dropIn)).toEqual(['[Service]', `ReadWritePaths="${mixes}"`, `ReadWritePaths="${studio}"`]);
    expect(dropIn).toMatch(/^# Written by `cryomix-watch systemd-drop-in` from \/etc\/cryomix-watch\/config.yaml\./);
    expect(first.stdout).toContain('DESTDIR set: no systemctl');
    expect(first.stdout).toContain('Next steps:');

    const before = snapshot(destdir);
    install(destdir, ['--prefix', '/usr', '--api-key-file', keyFile]);
    expect(snapshot(destdir)).toEqual(before);

    if (!analyzeUnavailable()) {
      // The installed unit and drop-in together, as systemd will read them.
      const check = join(dir, 'verify');
      mkdirSync(check);
      const copy = shippedUnitRunnable(check, at('usr/lib/systemd/system/cryomix-watch.service'), '/usr/bin/cryomix-watch');
      cpSync(at('etc/systemd/system/cryomix-watch.service.d'), `${copy}.d`, { recursive: true });
      const verify = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
      expect(verify.stdout + verify.stderr).toBe('');
    }
  });

  it('installs the example config when there is none, and leaves the key to the user, saying how', () => {
    const destdir = join(tempDir(), 'root');
    const run = install(destdir);
    expect(readFileSync(join(destdir, 'etc/cryomix-watch/config.yaml'), 'utf8')).toBe(EXAMPLE_CONFIG);
    // It may hold http.token: not for every local user to read.
    expect(statSync(join(destdir, 'etc/cryomix-watch/config.yaml')).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(destdir, 'usr/local/lib/systemd/system/cryomix-watch.service'), 'utf8')).toContain('\nExecStart=/usr/local/bin/cryomix-watch run ');
    expect(existsSync(join(destdir, 'etc/cryomix-watch/api-key'))).toBe(false);
    expect(run.stdout).toContain("sudo sh -c 'umask 077; cat > /etc/cryomix-watch/api-key'");
  });

  it('--uninstall removes what it installed and keeps config, key and state; --purge removes those too', () => {
    const { destdir, config, keyFile } = site();
    install(destdir, ['--api-key-file', keyFile]);
    mkdirSync(join(destdir, 'var/lib/cryomix-watch'), { recursive: true });
    writeFileSync(join(destdir, 'var/lib/cryomix-watch/state.db'), 'history');

    const removed = install(destdir, ['--uninstall']);
    for (const gone of [
      'usr/local/lib/cryomix-watch',
      'usr/local/bin/cryomix-watch',
      'usr/local/lib/systemd/system/cryomix-watch.service',
      'usr/local/lib/sysusers.d/cryomix-watch.conf',
      'etc/systemd/system/cryomix-watch.service.d',
    ]) {
      expect(existsSync(join(destdir, gone)), gone).toBe(false);
    }
    expect(readFileSync(join(destdir, 'etc/cryomix-watch/config.yaml'), 'utf8')).toBe(config);
    expect(readFileSync(join(destdir, 'etc/cryomix-watch/api-key'), 'utf8')).toBe('test-key-123\n');
    expect(existsSync(join(destdir, 'var/lib/cryomix-watch/state.db'))).toBe(true);
    expect(removed.stdout).toContain('kept /etc/cryomix-watch (config and API key) and /var/lib/cryomix-watch');

    install(destdir, ['--uninstall', '--purge']);
    expect(existsSync(join(destdir, 'etc/cryomix-watch'))).toBe(false);
    expect(existsSync(join(destdir, 'var/lib/cryomix-watch'))).toBe(false);
  });

  it('refuses what it does not understand, before touching anything', () => {
    const destdir = join(tempDir(), 'root');
    const bad = spawnSync('bash', [INSTALL, '--prefix', 'relative'], { env: { ...process.env, DESTDIR: destdir }, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--prefix must be an absolute path');
    expect(existsSync(destdir)).toBe(false);
  });

  it.each([
    ['too old for package.json engines', '20.18.1', 'is Node.js 20.18.1; cryomix-watch needs 20.19 or later'],
    ['not a Node.js at all', 'Welcome to a wrapper', 'could not read a Node.js version from'],
  ])('refuses a NODE that is %s, before installing anything', (_, printed, message) => {
    const dir = tempDir();
    const node = join(dir, 'node');
    writeFileSync(node, `#!/bin/sh\necho '${printed}'\n`, { mode: 0o755 });
    const destdir = join(dir, 'root');
    const run = spawnSync('bash', [INSTALL], { env: { ...process.env, DESTDIR: destdir, NODE: node }, encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(message);
    // The staging root itself is made first; nothing is put in it.
    expect(readdirSync(destdir)).toEqual([]);
  });
});

describe('systemd/install.sh as shell', () => {
  const unavailable = aptProvide(['shellcheck'], ['shellcheck']);
  if (unavailable !== undefined) console.log(`shellcheck of install.sh: ${unavailable}`);

  // Skipped only outside CI: under CI=true a missing shellcheck fails, saying why.
  it.skipIf(unavailable !== undefined && process.env.CI !== 'true')('is shellcheck-clean (skipped outside CI where shellcheck cannot be installed)', () => {
    expect(unavailable).toBeUndefined();
    const run = spawnSync('shellcheck', [INSTALL], { encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
  });
});
