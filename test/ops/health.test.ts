import { describe, expect, it } from 'vitest';
import { healthProblems, type HealthSource } from '../../src/ops/health.js';

const healthy: HealthSource = {
  failure: () => undefined,
  paused: () => null,
  folders: () => [{ path: '/srv/exports', problem: undefined }],
  databaseProblem: () => undefined,
};

describe('healthProblems', () => {
  it('is empty when the daemon can do its job', () => {
    expect(healthProblems(healthy)).toEqual([]);
  });

  it('names each problem, and says which ones a restart can fix', () => {
    const problems = healthProblems({
      failure: () => new Error('disk I/O error'),
      paused: () => ({ reason: 'the API rejected the API key (401)', since: 0 }),
      folders: () => [
        { path: '/srv/exports', problem: undefined },
        { path: '/mnt/nas/mixes', problem: { problem: 'unmounted', since: Date.now() - 61_000 } },
        { path: '/mnt/nas/hung', problem: { problem: 'not answering', since: Date.now() - 45_000 } },
        { path: '/mnt/usb', problem: { problem: 'not there', since: Date.now() } },
      ],
      databaseProblem: () => 'state database not writable: /var/lib/cryomix-watch: EROFS',
    });
    expect(problems).toEqual([
      { reason: 'state database failed: disk I/O error', restartHelps: true },
      { reason: 'state database not writable: /var/lib/cryomix-watch: EROFS', restartHelps: false },
      { reason: 'paused: API key rejected (the API rejected the API key (401))', restartHelps: false },
      { reason: 'not watching /mnt/nas/mixes: unmounted for 61 s; its files wait for it to be mounted again', restartHelps: false },
      { reason: '/mnt/nas/hung has not answered for 45 s (a hung network share?); its files wait, other folders carry on', restartHelps: false },
      { reason: 'not watching /mnt/usb: missing or unreadable for 0 s', restartHelps: false },
    ]);
  });
});
