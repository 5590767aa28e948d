import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { startHeartbeat, summaryLine } from '../../src/daemon/heartbeat.js';
import type { SystemdNotifier } from '../../src/ops/systemdNotify.js';

describe('summaryLine', () => {
  it('stays quiet when nothing moved', () => {
    const totals = { filesDone: 3, bytesUploaded: 9_000_000, failures: 0 };
    expect(summaryLine(totals, totals, 'watching 1 folder', 5)).toBeUndefined();
  });

  it('reports what happened in the window, and how things stand', () => {
    const line = summaryLine(
      { filesDone: 3, bytesUploaded: 9_000_000, failures: 0 },
      { filesDone: 15, bytesUploaded: 3_409_000_000, failures: 1 },
      'watching 2 folders, 2 uploading, 15 done today',
      5,
    );
    expect(line).toBe('last 5 min: 12 files done, 3.4 GB uploaded, 1 failed; now watching 2 folders, 2 uploading, 15 done today');
  });
});

describe('startHeartbeat', () => {
  it('sends a STATUS line again when systemd missed it, instead of leaving the old one until the status changes', () => {
    vi.useFakeTimers();
    try {
      const sent: Record<string, string>[] = [];
      let reachable = true;
      const notifier: SystemdNotifier = {
        enabled: true,
        socketPath: '/run/systemd/notify',
        watchdogIntervalMs: undefined,
        close: () => {},
        notify: (state) => {
          if (!reachable) throw new Error('sendto failed: EAGAIN');
          sent.push(state);
        },
      };
      let status = 'watching 1 folder';
      const daemon = { statusLine: () => status } as unknown as Daemon;
      const heartbeat = startHeartbeat({ daemon, notifier, logger: pino({ level: 'silent' }), summaryMinutes: 0 });
      reachable = false;
      status = 'watching 1 folder, 1 uploading';
      vi.advanceTimersByTime(10_000);
      reachable = true;
      vi.advanceTimersByTime(10_000);
      expect(sent.map((state) => state.STATUS)).toEqual(['watching 1 folder', 'watching 1 folder, 1 uploading']);
      heartbeat.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
