import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * What a user does with the package: `npm pack` in this checkout (prepack
 * builds it), then `npm install -g` of the tarball, here into `work/prefix`.
 * Dependencies come from npm's cache or its registry, as for `npm ci`.
 * Returns the prefix and the installed package's directory.
 */
export function packAndInstall(work: string): { prefix: string; installed: string } {
  const prefix = join(work, 'prefix');
  const packed = spawnSync('npm', ['pack', '--pack-destination', work, '--loglevel=error'], { cwd: REPO, encoding: 'utf8', timeout: 600_000 });
  if (packed.status !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`);
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack made no tarball: ${packed.stdout}`);
  // npm 11 runs no dependency's install script unless allowed; npm 10 (Node 20's) runs them and ignores the setting.
  const install = spawnSync(
    'npm',
    ['install', '-g', '--prefix', prefix, '--prefer-offline', '--allow-scripts=better-sqlite3,koffi', '--no-audit', '--no-fund', '--loglevel=error', join(work, tarball)],
    { cwd: work, encoding: 'utf8', timeout: 900_000 },
  );
  if (install.status !== 0) throw new Error(`npm install -g failed:\n${install.stderr}`);
  return { prefix, installed: join(prefix, 'lib', 'node_modules', 'cryomix-watch') };
}
