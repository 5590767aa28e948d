import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, useDaemons, waitForState, waitUntil } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { listenerUnavailable, NotifyListener } from '../systemd/notifyListener.js';

const tempDir = useTempDir('cryomix-notify-');
const unavailable = listenerUnavailable();
if (unavailable) console.warn(`skipping the systemd notification tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('run under systemd (Type=notify, a real NOTIFY_SOCKET listener)', () => {
  let listener: NotifyListener | undefined;

  afterEach(() => {
    listener?.stop();
  });
  // Registered after the listener's hook, so it runs before it: the daemon is dead before its socket closes.
  const { startSandbox, startDaemon } = useDaemons();

  it('asks for time while starting, says READY=1 with a STATUS line, feeds the watchdog, keeps STATUS current, and says STOPPING=1', async () => {
    const address = `@cryomix-watch-test-${randomUUID()}`;
    listener = await NotifyListener.start(address);
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox);
    // WatchdogSec=0.4s: pings every 200 ms.
    const daemon = startDaemon({ ...workspace, env: { ...workspace.env, NOTIFY_SOCKET: address, WATCHDOG_USEC: '400000' } });
    await daemon.ready();

    const [extend, ready] = await listener.received(2);
    // The first scan may take minutes on a NAS: systemd is asked for time before READY.
    expect(extend!.text).toMatch(/^EXTEND_TIMEOUT_USEC=60000000\nSTATUS=starting: /);
    expect(ready!.pid).toBe(daemon.pid);
    expect(ready!.text).toMatch(/^READY=1\nSTATUS=watching 1 folder, 0 uploading, 0 done today\n?$/);
    await waitUntil(() => listener!.datagrams.some((d) => d.text.trim() === 'WATCHDOG=1'));

    // Paused is outside the daemon's control: the watchdog keeps being fed, STATUS says why.
    sandbox.faults.setUnauthorized(true);
    const mix = join(workspace.inbox, 'mix.wav');
    writeFileSync(mix, pcmWav(20_000));
    await waitUntil(() => listener!.datagrams.some((d) => d.text.includes('STATUS=paused: API key rejected')), 20_000);
    const pings = listener.datagrams.filter((d) => d.text.trim() === 'WATCHDOG=1').length;
    await waitUntil(() => listener!.datagrams.filter((d) => d.text.trim() === 'WATCHDOG=1').length > pings + 2);
    sandbox.faults.setUnauthorized(false);
    await waitForState(workspace, mix, 'done');
    await waitUntil(() => listener!.datagrams.some((d) => /STATUS=watching 1 folder, 0 uploading, 1 done today/.test(d.text)), 20_000);

    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const stopping = listener.datagrams.find((d) => d.text.includes('STOPPING=1'));
    expect(stopping?.pid).toBe(daemon.pid);
    expect(listener.datagrams.every((d) => d.pid === daemon.pid)).toBe(true);
  });
});
