import { isIP } from 'node:net';

/**
 * True for names and addresses that can only reach this machine. Plain
 * `http://` is allowed for these alone (the embedded sandbox), never for a
 * remote host where the API key and the audio would cross a network in clear.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}
