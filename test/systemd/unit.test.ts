import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../helpers/tempDir.js';
import { analyzeUnavailable, exposureLevel, SHIPPED_UNIT, shippedUnitRunnable } from './analyze.js';

/** The settings of the shipped unit, comments and blank lines left out. */
const settings = readFileSync(SHIPPED_UNIT, 'utf8')
  .split('\n')
  .filter((line) => /^[A-Za-z]/.test(line));

describe('the shipped unit says', () => {
  it.each([
    'Type=notify',
    'NotifyAccess=main',
    'User=cryomix-watch',
    'LoadCredential=cryomix-api-key:/etc/cryomix-watch/api-key',
    'ProtectSystem=strict',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
    'CapabilityBoundingSet=',
    'Restart=on-failure',
    'RestartPreventExitStatus=78',
  ])('%s', (setting) => {
    expect(settings).toContain(setting);
  });

  it('never MemoryDenyWriteExecute= (V8 compiles at run time and aborts under it)', () => {
    expect(settings.filter((line) => line.startsWith('MemoryDenyWriteExecute='))).toEqual([]);
  });

  it('gives a stop time above the default shutdown grace of 20 s', () => {
    const stop = settings.find((line) => line.startsWith('TimeoutStopSec='));
    expect(Number(stop?.split('=')[1])).toBeGreaterThan(20 + 10);
  });

  it('hides no /proc file the daemon reads (ProcSubset=pid would hide /proc/sys/fs/inotify)', () => {
    expect(settings.filter((line) => line.startsWith('ProcSubset='))).toEqual([]);
  });
});

const unavailable = analyzeUnavailable();
if (unavailable) console.log(`skipping the systemd-analyze checks of the unit: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('systemd-analyze on the shipped unit', () => {
  const tempDir = useTempDir();

  it('rates its exposure at 2.0 or better', () => {
    const { level, report } = exposureLevel(SHIPPED_UNIT);
    console.log(`systemd-analyze security --offline=true: overall exposure ${level}`);
    expect(level, report).toBeLessThanOrEqual(2.0);
  });

  it('verifies without a word', () => {
    const verify = spawnSync('systemd-analyze', ['verify', shippedUnitRunnable(tempDir())], { encoding: 'utf8' });
    expect(verify.stdout + verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });
});
