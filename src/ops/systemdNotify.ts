import { constants, endianness } from 'node:os';
import { CryomixWatchError } from '../errors.js';
import { loadLibc, type Libc } from './libc.js';

/*
 * sd_notify(3) without libsystemd: one datagram of `KEY=value` lines sent to
 * the AF_UNIX socket named by $NOTIFY_SOCKET. Node has no unix datagram
 * sockets, so socket(2)/sendto(2) are called through koffi, a prebuilt FFI
 * (no node-gyp, no libsystemd-dev). koffi is loaded only when $NOTIFY_SOCKET
 * is set, so a machine where it cannot load still runs the daemon by hand.
 *
 * The call happens on the main thread, so the kernel stamps the datagram
 * with this process's PID: what NotifyAccess=main requires.
 */

export interface SystemdNotifier {
  /** True when running under a systemd unit that listens (Type=notify): $NOTIFY_SOCKET is set. */
  readonly enabled: boolean;
  /** $NOTIFY_SOCKET as given (`/run/systemd/notify`, or `@name` for an abstract socket). */
  readonly socketPath: string | undefined;
  /**
   * How often to send `WATCHDOG=1`: half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
   * advises; undefined when the unit has no WatchdogSec= or it is meant for another PID.
   */
  readonly watchdogIntervalMs: number | undefined;
  /**
   * Sends `{READY: '1', STATUS: 'watching 3 folders'}` as one datagram of
   * `KEY=value` lines. A no-op when not enabled. Never blocks: a full
   * socket queue is an error like any other (`SystemdNotifyError`, EAGAIN),
   * and the next call tries again. Newlines in values become spaces (a file
   * name may hold one; the protocol is line-based).
   */
  notify(state: Readonly<Record<string, string>>): void;
  /** Closes the socket; later `notify` calls are a programming error. Idempotent. */
  close(): void;
}

/** The notification socket is unusable or a send failed; `errno` is the C errno when there is one. */
export class SystemdNotifyError extends CryomixWatchError {
  readonly socketPath: string;
  readonly errno: number | undefined;
  /** EAGAIN, ENOENT, ECONNREFUSED…, from `errno`. */
  readonly errnoCode: string | undefined;

  constructor(socketPath: string, what: string, errno?: number, options?: { cause?: unknown }) {
    const errnoCode = errno === undefined ? undefined : errnoName(errno);
    super('SYSTEMD_NOTIFY_FAILED', `systemd notification socket ${socketPath}: ${what}${errnoCode ? ` (${errnoCode})` : ''}`, options);
    this.socketPath = socketPath;
    this.errno = errno;
    this.errnoCode = errnoCode;
  }
}

function errnoName(errno: number): string {
  const entry = Object.entries(constants.errno).find(([, value]) => value === errno);
  return entry ? entry[0] : `errno ${errno}`;
}

const AF_UNIX = 1;
// MIPS numbers socket types differently from every other Linux architecture.
const SOCK_DGRAM = process.arch === 'mips' || process.arch === 'mipsel' ? 1 : 2;
const SOCK_CLOEXEC = 0o2000000;
// No SIGPIPE if systemd went away; never block the event loop on a full queue.
const MSG_NOSIGNAL = 0x4000;
const MSG_DONTWAIT = 0x40;
/** sizeof(sockaddr_un.sun_path) on Linux. */
const SUN_PATH_MAX = 108;

/**
 * The sockaddr_un for $NOTIFY_SOCKET, cut to its address length: a 16-bit
 * family then the path. `@name` is abstract: a leading NUL, and the length
 * must not include a trailing NUL (it would become part of the name).
 * A file-system path carries its terminating NUL, as sd_notify sends it.
 */
export function notifySocketAddress(socketPath: string): Buffer {
  if (!socketPath.startsWith('/') && !socketPath.startsWith('@')) {
    throw new SystemdNotifyError(socketPath, 'expected an absolute path or an @abstract name (vsock: is not supported)');
  }
  const abstract = socketPath.startsWith('@');
  const name = Buffer.from(abstract ? socketPath.slice(1) : socketPath, 'utf8');
  const pathBytes = abstract ? Buffer.concat([Buffer.of(0), name]) : Buffer.concat([name, Buffer.of(0)]);
  if (pathBytes.length > SUN_PATH_MAX) throw new SystemdNotifyError(socketPath, `the name is longer than ${SUN_PATH_MAX} bytes`);
  const address = Buffer.alloc(2 + pathBytes.length);
  // sa_family_t is in host byte order.
  if (endianness() === 'BE') address.writeUInt16BE(AF_UNIX, 0);
  else address.writeUInt16LE(AF_UNIX, 0);
  pathBytes.copy(address, 2);
  return address;
}

/** Half of $WATCHDOG_USEC, when the watchdog is meant for this process (sd_watchdog_enabled semantics). */
export function watchdogInterval(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

const KEY = /^[A-Z_][A-Z0-9_]*$/;

/** The datagram text; keys are checked because a bad one is a bug here, values are flattened because they come from outside. */
export function notifyMessage(state: Readonly<Record<string, string>>): string {
  return Object.entries(state)
    .map(([key, value]) => {
      if (!KEY.test(key)) throw new TypeError(`Expected a systemd notification key like READY or STATUS, got \`${key}\``);
      return `${key}=${value.replace(/[\r\n]+/g, ' ')}\n`;
    })
    .join('');
}

/** The C library, or a SystemdNotifyError saying why it cannot be had. */
function loadLibcFor(socketPath: string): Libc {
  try {
    return loadLibc();
  } catch (error) {
    throw new SystemdNotifyError(socketPath, `cannot load koffi to reach it: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
  }
}

const disabled: SystemdNotifier = {
  enabled: false,
  socketPath: undefined,
  watchdogIntervalMs: undefined,
  notify: () => undefined,
  close: () => undefined,
};

/**
 * The notifier for this process. Not under systemd ($NOTIFY_SOCKET unset):
 * a no-op that never loads koffi. Under systemd, one socket is opened now
 * and reused for the process's life (close-on-exec, so hooks do not inherit
 * it); throws `SystemdNotifyError` if that cannot be done, since systemd
 * would otherwise wait for READY=1 until its start timeout.
 */
export function createSystemdNotifier(env: NodeJS.ProcessEnv = process.env): SystemdNotifier {
  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return disabled;
  const address = notifySocketAddress(socketPath);
  const c = loadLibcFor(socketPath);
  let fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SystemdNotifyError(socketPath, 'cannot create a datagram socket', c.errno());
  return {
    enabled: true,
    socketPath,
    watchdogIntervalMs: watchdogInterval(env),
    notify(state) {
      if (fd < 0) throw new Error('SystemdNotifier.notify() called after close()');
      const message = Buffer.from(notifyMessage(state), 'utf8');
      if (message.length === 0) return;
      const sent = c.sendto(fd, message, message.length, MSG_NOSIGNAL | MSG_DONTWAIT, address, address.length);
      if (sent < 0) throw new SystemdNotifyError(socketPath, 'sending a notification failed', c.errno());
    },
    close() {
      if (fd < 0) return;
      c.close(fd);
      fd = -1;
    },
  };
}
