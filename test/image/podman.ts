import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptProvide, debianMirror } from '../helpers/apt.js';

/**
 * podman as this machine allows it: crun refuses its hybrid cgroup layout,
 * so runc with cgroupfs; the host's network (containers reach the sandbox on
 * 127.0.0.1); and explicit ulimits, which podman would otherwise try to
 * raise past what it may.
 */
const GLOBAL = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];
export const RUN_FLAGS = ['--network', 'host', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function podman(args: string[], timeoutMs = 120_000): Run {
  const result = spawnSync('podman', [...GLOBAL, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) return { status: null, stdout: '', stderr: String(result.error) };
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** podman, or why the image cannot be tested here (installed with apt when missing, as root). */
export function podmanUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'building and running the image with podman needs root here';
  return aptProvide(['podman', 'buildah', 'runc', 'debootstrap'], ['podman', 'buildah', 'runc', 'debootstrap']);
}

const CACHE = '/var/tmp/cryomix-watch-image';
/** Raised with any change to how the base images are made, so that ones of the old recipe are made again. */
const RECIPE = '1';
const LABEL = 'cryomix-watch.test-base';

interface Base {
  tag: string;
  /** What debootstrap adds to minbase: the official full image has a compiler, which better-sqlite3 needs. */
  packages: string[];
  /** npm and node's headers, to build in it. */
  forBuilding: boolean;
}

const BASES: Base[] = [
  { tag: 'docker.io/library/node:20-bookworm', packages: ['build-essential', 'python3', 'ca-certificates', 'git'], forBuilding: true },
  { tag: 'docker.io/library/node:20-bookworm-slim', packages: [], forBuilding: false },
];

/**
 * The Containerfile builds FROM the official node images, which no registry
 * here serves. Stand-ins with the same names are made once: a debootstrap
 * root file system with this machine's node (and, to build in, its npm and
 * node's headers), a `node` user (1000) as the official images have, and this
 * machine's CA bundle and npm settings (its registry is reached through a
 * proxy with its own CA; node-gyp finds the headers locally instead of
 * downloading them). An official image already there is used as it is.
 */
export function ensureBaseImages(log: (line: string) => void): void {
  for (const base of BASES) {
    const label = podman(['image', 'inspect', '--format', `{{index .Config.Labels "${LABEL}"}}`, base.tag]);
    const recipe = label.stdout.trim();
    // Ours of this recipe, or not ours at all (the official image, pulled while a registry was reachable).
    if (label.status === 0 && (recipe === RECIPE || !/^\d+$/.test(recipe))) {
      log(`base image ${base.tag}: present`);
      continue;
    }
    log(`base image ${base.tag}: making it (debootstrap, once)`);
    const root = rootFileSystem(base);
    const changes = ['--change', `LABEL ${LABEL}=${RECIPE}`, '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
    if (base.forBuilding) changes.push('--change', 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', '--change', 'ENV npm_config_nodedir=/usr/local');
    const tar = spawnSync('sh', ['-c', `tar -C '${root}' -c . | podman ${GLOBAL.join(' ')} import ${changes.map((c) => `'${c}'`).join(' ')} - '${base.tag}'`], { encoding: 'utf8', timeout: 600_000 });
    if (tar.status !== 0) throw new Error(`podman import of ${base.tag} failed: ${tar.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
}

function rootFileSystem(base: Base): string {
  const root = join(CACHE, `${base.tag.replace(/[^a-z0-9.-]+/gi, '_')}-${RECIPE}`);
  mkdirSync(CACHE, { recursive: true });
  if (existsSync(join(root, '.complete'))) return root;
  const building = `${root}.new`;
  rmSync(building, { recursive: true, force: true });
  const include = base.packages.length > 0 ? [`--include=${base.packages.join(',')}`] : [];
  const made = spawnSync('debootstrap', ['--variant=minbase', ...include, 'bookworm', building, debianMirror()], { encoding: 'utf8', timeout: 900_000 });
  if (made.status !== 0) throw new Error(`debootstrap failed: ${(made.stdout + made.stderr).trim().split('\n').slice(-3).join(' | ')}`);
  copyFileSync(process.execPath, join(building, 'usr/local/bin/node'));
  spawnSync('chmod', ['0755', join(building, 'usr/local/bin/node')]);
  const user = spawnSync('chroot', [building, '/bin/sh', '-c', 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node'], { encoding: 'utf8' });
  if (user.status !== 0) throw new Error(`could not add the node user: ${user.stderr.trim()}`);
  if (base.forBuilding) {
    cpSync(npmDirectory(), join(building, 'usr/local/lib/node_modules/npm'), { recursive: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(building, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(building, 'usr/local/bin/npx'));
    cpSync(headersDirectory(), join(building, 'usr/local/include/node'), { recursive: true });
    copyFileSync('/etc/ssl/certs/ca-certificates.crt', join(building, 'etc/ssl/certs/ca-certificates.crt'));
  }
  for (const deb of readdirSync(join(building, 'var/cache/apt/archives')).filter((name) => name.endsWith('.deb'))) rmSync(join(building, 'var/cache/apt/archives', deb));
  writeFileSync(join(building, '.complete'), '');
  rmSync(root, { recursive: true, force: true });
  renameSync(building, root);
  return root;
}

/** This machine's npm, which `npm test` itself runs under. */
function npmDirectory(): string {
  const candidates = [join(process.execPath, '../../lib/node_modules/npm'), '/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm'];
  const found = candidates.find((dir) => existsSync(join(dir, 'bin/npm-cli.js')));
  if (found === undefined) throw new Error(`npm not found in ${candidates.join(', ')}`);
  return found;
}

/** node's C++ headers for this node, which node-gyp would otherwise download from nodejs.org. */
function headersDirectory(): string {
  const candidates = [join(process.execPath, '../../include/node'), '/usr/include/node', '/usr/local/include/node'];
  const found = candidates.find((dir) => existsSync(join(dir, 'node_version.h')));
  if (found === undefined) throw new Error(`node's headers not found in ${candidates.join(', ')}`);
  return found;
}
