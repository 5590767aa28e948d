import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * undici, loaded at its first use: about 75 ms of imports that the daemon's
 * startup scan need not wait for. Through require, not import(): Node keeps
 * a failed import() for good, so a first API call made while the process is
 * out of file descriptors (a burst of files holds them all) would fail every
 * later call until a restart. require tries again.
 */
export function undici(): typeof import('undici') {
  return require('undici') as typeof import('undici');
}
