import { createRequire } from 'node:module';

/**
 * The few C library calls Node does not offer, through koffi, a prebuilt FFI
 * (no node-gyp). Loaded on first use only, so a machine where koffi cannot
 * load still runs everything that does not need them.
 */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  close(fd: number): number;
  /** Ends the process at once: no exit handlers, no waiting for libuv's threads. */
  _exit(status: number): void;
  errno(): number;
}

let libc: Libc | undefined;

/** Throws, with the reason, where koffi or the C library cannot be loaded. */
export function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new Error(`only supported on Linux, not ${process.platform}`);
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  // glibc by soname; elsewhere (musl) the symbols node itself links against.
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libc.so.6');
  } catch {
    lib = koffi.load(null);
  }
  libc = {
    socket: lib.func('int socket(int domain, int type, int protocol)') as Libc['socket'],
    sendto: lib.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)') as Libc['sendto'],
    close: lib.func('int close(int fd)') as Libc['close'],
    _exit: lib.func('void _exit(int status)') as Libc['_exit'],
    errno: () => koffi.errno(),
  };
  return libc;
}
