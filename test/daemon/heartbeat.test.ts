import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
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

/** A notifier whose sends fail (as with EAGAIN on a busy socket) while `reachable` is false; `sent` holds what got through. */
function flakyNotifier(reachable: boolean) {
  const link = { reachable, sent: [] as Record<string, string>[] };
  const notifier: SystemdNotifier = {
    enabled: true,
    socketPath: '/run/systemd/notify',
    watchdogIntervalMs: undefined,
    close: () => {},
    notify: (state) => {
      if (!link.reachable) throw new Error('sendto failed: EAGAIN');
      link.sent.push(state);
    },
  };
  return { link, notifier };
}

describe('startHeartbeat', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('does not read the status line without systemd to send it to (a start over a large history need not pay for it)', async () => {
    const statusLine = vi.fn(async () => 'watching 1 folder');
    const daemon = { statusLine } as unknown as Daemon;
    const notifier: SystemdNotifier = { enabled: false, socketPath: undefined, watchdogIntervalMs: undefined, close: () => {}, notify: () => {} };
    const heartbeat = await startHeartbeat({ daemon, notifier, logger: pino({ level: 'silent' }), summaryMinutes: 0 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(statusLine).not.toHaveBeenCalled();
    heartbeat.stop();
  });

  it('sends a STATUS line again when systemd missed it, instead of leaving the old one until the status changes', async () => {
    const { link, notifier } = flakyNotifier(true);
    let status = 'watching 1 folder';
    const daemon = { statusLine: async () => status } as unknown as Daemon;
    const heartbeat = await startHeartbeat({ daemon, notifier, logger: pino({ level: 'silent' }), summaryMinutes: 0 });
    link.reachable = false;
    status = 'watching 1 folder, 1 uploading';
    await vi.advanceTimersByTimeAsync(10_000);
    link.reachable = true;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.map((state) => state.STATUS)).toEqual(['watching 1 folder', 'watching 1 folder, 1 uploading']);
    heartbeat.stop();
  });

  it('says READY=1 again when systemd missed it, which would otherwise kill the daemon at its start timeout', async () => {
    const { link, notifier } = flakyNotifier(false);
    const daemon = { statusLine: async () => 'watching 1 folder' } as unknown as Daemon;
    const heartbeat = await startHeartbeat({ daemon, notifier, logger: pino({ level: 'silent' }), summaryMinutes: 0 });
    link.reachable = true;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(link.sent).toEqual([{ READY: '1', STATUS: 'watching 1 folder' }]);
    heartbeat.stop();
  });
});
