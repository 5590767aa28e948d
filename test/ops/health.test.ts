import { describe, expect, it } from 'vitest';
import { healthProblems, type HealthSource } from '../../src/ops/health.js';

const healthy: HealthSource = {
  failure: () => undefined,
  paused: () => null,
  folders: () => [{ path: '/srv/exports', watching: true }],
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
        { path: '/srv/exports', watching: true },
        { path: '/mnt/nas/mixes', watching: false },
      ],
      databaseProblem: () => 'state database not writable: /var/lib/cryomix-watch: EROFS',
    });
    expect(problems).toEqual([
      { reason: 'state database failed: disk I/O error', restartHelps: true },
      { reason: 'state database not writable: /var/lib/cryomix-watch: EROFS', restartHelps: false },
      { reason: 'paused: API key rejected (the API rejected the API key (401))', restartHelps: false },
      { reason: 'not watching /mnt/nas/mixes: missing, unmounted or unreadable', restartHelps: false },
    ]);
  });
});
