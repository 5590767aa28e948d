import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { DropInError, quoteUnitPath, siteDropIn, type PathFacts } from '../../src/ops/dropIn.js';
import { useTempDir } from '../helpers/tempDir.js';
import { analyzeUnavailable, shippedUnitRunnable } from './analyze.js';

const MOUNTS = [
  { mountPoint: '/', type: 'ext4' },
  { mountPoint: '/srv/nas', type: 'cifs' },
  { mountPoint: '/mnt/usb', type: 'exfat' },
];

/** Everything exists but `missing`; `/srv/link` is a symlink to `/srv/real`. */
function facts(missing: string[] = []): PathFacts {
  return {
    realPath: (path) => path.replace(/^\/srv\/link(?=\/|$)/, '/srv/real'),
    exists: (path) => !missing.includes(path),
  };
}

function dropIn(folders: unknown[], options: { database?: string; missing?: string[] } = {}) {
  const config = parseConfig(JSON.stringify({ folders, state: { database: options.database ?? '/var/lib/cryomix-watch/state.db' } }), '/etc/cryomix-watch');
  return siteDropIn({ config, mounts: MOUNTS, paths: facts(options.missing), configFile: '/etc/cryomix-watch/config.yaml' });
}

/** The settings of the drop-in, without comments and blank lines. */
function settings(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('the site drop-in', () => {
  it.each([
    ['one root, files kept', [{ path: '/srv/exports' }], ['[Service]', 'ReadWritePaths="/srv/exports"']],
    [
      'moveTo inside the root: one entry',
      [{ path: '/srv/exports', afterUpload: 'move', moveTo: '/srv/exports/uploaded' }],
      ['[Service]', 'ReadWritePaths="/srv/exports"'],
    ],
    [
      'moveTo outside the root on the same file system: their common folder, one entry',
      [{ path: '/srv/studio/exports', afterUpload: 'move', moveTo: '/srv/studio/uploaded' }],
      ['[Service]', 'ReadWritePaths="/srv/studio"'],
    ],
    [
      'moveTo on another mount: two entries, and the mount required',
      [{ path: '/srv/exports', afterUpload: 'move', moveTo: '/srv/nas/uploaded' }],
      ['[Unit]', 'RequiresMountsFor="/srv/nas/uploaded"', '[Service]', 'ReadWritePaths="/srv/exports"', 'ReadWritePaths="/srv/nas/uploaded"'],
    ],
    [
      'two roots on separate mounts',
      [{ path: '/srv/nas/exports' }, { path: '/mnt/usb/mixes' }],
      ['[Unit]', 'RequiresMountsFor="/mnt/usb/mixes"', 'RequiresMountsFor="/srv/nas/exports"', '[Service]', 'ReadWritePaths="/mnt/usb/mixes"', 'ReadWritePaths="/srv/nas/exports"'],
    ],
    [
      'a path with a space, a quote, a backslash and a percent sign',
      [{ path: '/srv/My Mixes "final" \\ 100%' }],
      ['[Service]', 'ReadWritePaths="/srv/My Mixes \\"final\\" \\\\ 100%%"'],
    ],
    [
      'masters: inside the root by default, an entry of their own elsewhere',
      [{ path: '/srv/a', mastering: {} }, { path: '/srv/b', mastering: { outputDir: '/srv/masters' } }],
      ['[Service]', 'ReadWritePaths="/srv/a"', 'ReadWritePaths="/srv/b"', 'ReadWritePaths="/srv/masters"'],
    ],
    [
      'a root inside another folder\'s entry: only the outer one (a nested bind mount splits a folder in two)',
      [{ path: '/srv/studio/exports', afterUpload: 'move', moveTo: '/srv/studio/uploaded' }, { path: '/srv/studio/live' }],
      ['[Service]', 'ReadWritePaths="/srv/studio"'],
    ],
    [
      'symlinks resolved before grouping',
      [{ path: '/srv/link/exports', afterUpload: 'move', moveTo: '/srv/real/uploaded' }],
      ['[Service]', 'ReadWritePaths="/srv/real"'],
    ],
  ])('%s', (_name, folders, expected) => {
    const { text, warnings } = dropIn(folders);
    expect(settings(text)).toEqual(expected);
    expect(warnings).toEqual([]);
  });

  it('says in a comment why each entry is there', () => {
    const { text } = dropIn([{ path: '/srv/studio/exports', afterUpload: 'move', moveTo: '/srv/studio/uploaded' }]);
    expect(text).toContain('# watch root /srv/studio/exports and its moveTo /srv/studio/uploaded: one file system, so one entry, or moves fail with EXDEV\nReadWritePaths="/srv/studio"');
    expect(text).toMatch(/^# Written by `cryomix-watch systemd-drop-in` from \/etc\/cryomix-watch\/config.yaml/);
  });

  it('keeps a root and a moveTo apart when they meet only at a system folder, and says moves will copy', () => {
    const { text, warnings } = dropIn([{ path: '/home/alice/Exports', afterUpload: 'move', moveTo: '/srv/uploaded' }]);
    expect(settings(text)).toEqual(['[Service]', 'ReadWritePaths="/home/alice/Exports"', 'ReadWritePaths="/srv/uploaded"']);
    expect(warnings).toEqual([expect.stringContaining('meet only at /, too wide to make writable')]);
    expect(text).toContain('# WARNING: /home/alice/Exports and its moveTo');
  });

  it('adds the directory of a state database outside StateDirectory', () => {
    expect(settings(dropIn([{ path: '/srv/a' }], { database: '/srv/state/cryomix.db' }).text)).toEqual([
      '[Service]',
      'ReadWritePaths="/srv/a"',
      'ReadWritePaths="/srv/state"',
    ]);
  });

  it('marks a folder that does not exist yet as optional, so the unit still starts, and says so', () => {
    const { text, warnings } = dropIn([{ path: '/srv/nas/later' }], { missing: ['/srv/nas/later'] });
    expect(settings(text)).toEqual(['[Unit]', 'RequiresMountsFor="/srv/nas/later"', '[Service]', 'ReadWritePaths="-/srv/nas/later"']);
    expect(warnings).toEqual([expect.stringContaining('/srv/nas/later does not exist')]);
  });

  it('warns about a folder under /tmp, which PrivateTmp= hides', () => {
    expect(dropIn([{ path: '/tmp/exports' }]).warnings).toEqual([expect.stringContaining('PrivateTmp=')]);
  });

  it('refuses a path a unit file cannot carry', () => {
    expect(() => quoteUnitPath('/srv/two\nlines')).toThrow(DropInError);
  });
});

const unavailable = analyzeUnavailable();
if (unavailable) console.log(`skipping systemd-analyze verify of the drop-in: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('the drop-in as systemd reads it', () => {
  const tempDir = useTempDir();

  it('parses without a warning, spaces, quotes and percent signs included', () => {
    const dir = tempDir();
    const unit = shippedUnitRunnable(dir);
    const weird = join(dir, 'My Mixes "final" 100%');
    mkdirSync(weird);
    const config = parseConfig(JSON.stringify({ folders: [{ path: weird }] }), dir);
    const { text } = siteDropIn({ config, mounts: MOUNTS, paths: facts(), configFile: 'config.yaml' });
    mkdirSync(`${unit}.d`);
    writeFileSync(join(`${unit}.d`, '10-folders.conf'), text);
    const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(verify.stderr + verify.stdout).toBe('');
    expect(verify.status).toBe(0);
  });

  it('is what makes systemd complain when the path is left unquoted (the check above can fail)', () => {
    const dir = tempDir();
    const unit = shippedUnitRunnable(dir);
    mkdirSync(`${unit}.d`);
    writeFileSync(join(`${unit}.d`, '10-folders.conf'), '[Service]\nReadWritePaths=/srv/My Mixes\n');
    const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(verify.stderr).toContain('not absolute');
  });
});
