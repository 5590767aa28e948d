import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createSystemdNotifier,
  notifyMessage,
  notifySocketAddress,
  SystemdNotifyError,
  watchdogInterval,
} from '../../src/ops/systemdNotify.js';
import { useTempDir } from '../helpers/tempDir.js';
import { listenerUnavailable, NotifyListener } from './notifyListener.js';

/** The built module, as the daemon loads it (`npm test` builds first). */
const BUILT = fileURLToPath(new URL('../../dist/ops/systemdNotify.js', import.meta.url));

/*
 * A separate node process, so the PID the kernel stamps on its datagrams is
 * a main PID of its own, as under systemd. It reports its PID, whether koffi
 * got loaded, and what the notifier made of the environment.
 */
const CHILD = `
import { createRequire } from 'node:module';
const { createSystemdNotifier } = await import(process.argv[1]);
const notifier = createSystemdNotifier();
notifier.notify({ READY: '1', STATUS: process.argv[2] });
notifier.notify({ WATCHDOG: '1' });
notifier.close();
const loaded = Object.keys(createRequire(import.meta.url).cache).some((file) => file.includes('/koffi/'));
console.log(JSON.stringify({ pid: process.pid, enabled: notifier.enabled, koffiLoaded: loaded, watchdogIntervalMs: notifier.watchdogIntervalMs ?? null }));
`;

interface ChildReport {
  pid: number;
  enabled: boolean;
  koffiLoaded: boolean;
  watchdogIntervalMs: number | null;
}

async function runChild(env: NodeJS.ProcessEnv, status: string): Promise<ChildReport> {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run "npm run build" first (npm test does)`);
  const childEnv = { ...process.env, NOTIFY_SOCKET: undefined, WATCHDOG_USEC: undefined, WATCHDOG_PID: undefined, ...env };
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD, pathToFileURL(BUILT).href, status], { env: childEnv });
  return JSON.parse(stdout) as ChildReport;
}

const unavailable = listenerUnavailable();
if (unavailable) console.log(`skipping the NOTIFY_SOCKET listener tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('sd_notify to a real listener', () => {
  const tempDir = useTempDir();
  let listener: NotifyListener | undefined;
  afterEach(() => {
    listener?.stop();
    listener = undefined;
  });

  it.each([
    ['a file-system socket (with a space in its path)', () => join(tempDir(), 'systemd notify')],
    ['an abstract @ socket', () => `@cryomix-test-${process.pid}-${randomBytes(4).toString('hex')}`],
  ])('delivers KEY=value lines from the main PID over %s', async (_name, address) => {
    const socketPath = address();
    listener = await NotifyListener.start(socketPath);
    const child = await runChild({ NOTIFY_SOCKET: socketPath }, 'watching 3 folders,\n2 uploading');
    const [ready, watchdog] = await listener.received(2);
    expect(child).toMatchObject({ enabled: true, koffiLoaded: true });
    expect(ready).toEqual({ text: 'READY=1\nSTATUS=watching 3 folders, 2 uploading\n', pid: child.pid });
    // The same socket, still the main PID: NotifyAccess=main accepts it.
    expect(watchdog).toEqual({ text: 'WATCHDOG=1\n', pid: child.pid });
  });

  it('reads the watchdog interval in the child from WATCHDOG_USEC without a PID', async () => {
    const socketPath = join(tempDir(), 'notify');
    listener = await NotifyListener.start(socketPath);
    const child = await runChild({ NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '60000000' }, 'up');
    expect(child.watchdogIntervalMs).toBe(30_000);
  });
});

describe('sd_notify outside systemd', () => {
  it('is a no-op that never loads koffi when NOTIFY_SOCKET is unset', async () => {
    const child = await runChild({}, 'nobody listens');
    expect(child).toEqual({ pid: child.pid, enabled: false, koffiLoaded: false, watchdogIntervalMs: null });
    const notifier = createSystemdNotifier({});
    expect(() => notifier.notify({ READY: '1' })).not.toThrow();
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    notifier.close();
  });

  it('raises a typed error naming the socket and errno when nobody listens', () => {
    const missingDir = join(fileURLToPath(new URL('.', import.meta.url)), 'no-such-dir');
    for (const [socketPath, errnoCode] of [
      [join(missingDir, 'notify'), 'ENOENT'],
      [`@cryomix-test-nobody-${randomBytes(4).toString('hex')}`, 'ECONNREFUSED'],
    ] as const) {
      const notifier = createSystemdNotifier({ NOTIFY_SOCKET: socketPath });
      expect(notifier.enabled).toBe(true);
      let thrown: unknown;
      try {
        notifier.notify({ READY: '1' });
      } catch (error) {
        thrown = error;
      }
      notifier.close();
      expect(thrown).toBeInstanceOf(SystemdNotifyError);
      expect(thrown).toMatchObject({ code: 'SYSTEMD_NOTIFY_FAILED', socketPath, errnoCode, errno: expect.any(Number) });
      expect((thrown as Error).message).toContain(socketPath);
    }
  });

  it('refuses a NOTIFY_SOCKET it cannot address, when created', () => {
    expect(() => createSystemdNotifier({ NOTIFY_SOCKET: 'vsock:2:1234' })).toThrow(SystemdNotifyError);
    expect(() => createSystemdNotifier({ NOTIFY_SOCKET: `/${'x'.repeat(120)}` })).toThrow(/longer than 108 bytes/);
  });
});

describe('sd_notify pieces', () => {
  it('builds sockaddr_un: a trailing NUL for paths, a leading one and no trailing one for abstract names', () => {
    expect([...notifySocketAddress('/run/n')]).toEqual([1, 0, ...Buffer.from('/run/n'), 0]);
    expect([...notifySocketAddress('@sd')]).toEqual([1, 0, 0, ...Buffer.from('sd')]);
  });

  it('joins KEY=value lines and refuses keys systemd would not understand', () => {
    expect(notifyMessage({ READY: '1', STATUS: 'a\r\nb' })).toBe('READY=1\nSTATUS=a b\n');
    expect(() => notifyMessage({ 'ready=1\nX': '1' })).toThrow(TypeError);
  });

  it.each([
    [{}, undefined],
    [{ WATCHDOG_USEC: '60000000' }, 30_000],
    [{ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '4242' }, 30_000],
    [{ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '4243' }, undefined],
    [{ WATCHDOG_USEC: '0' }, undefined],
    [{ WATCHDOG_USEC: 'soon' }, undefined],
  ])('watchdog interval for %j (as PID 4242): %s ms', (env, expected) => {
    expect(watchdogInterval(env, 4242)).toBe(expected);
  });

  it('watchdogIntervalMs honours WATCHDOG_PID against this process', () => {
    const mine = createSystemdNotifier({ NOTIFY_SOCKET: '@cryomix-test-unused', WATCHDOG_USEC: '10000000', WATCHDOG_PID: String(process.pid) });
    const theirs = createSystemdNotifier({ NOTIFY_SOCKET: '@cryomix-test-unused', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '1' });
    expect([mine.watchdogIntervalMs, theirs.watchdogIntervalMs]).toEqual([5000, undefined]);
    mine.close();
    theirs.close();
  });
});
