import { isLoopbackHost } from '../net/loopback.js';
import { parseUrl, redactUrl } from '../net/redact.js';
import { UnsafeUrlError } from './errors.js';

/**
 * Accepts a signed URL from the API only if it goes where the user allowed
 * (SPEC guarantee 6). Origins are compared as parsed URLs, never as string
 * prefixes, so `https://storage.googleapis.com.evil.com/` and
 * `https://storage.googleapis.com@evil/` cannot pass for Google.
 */
export function validateSignedUrl(raw: unknown, uploadOrigins: string[]): URL {
  if (typeof raw !== 'string') throw new UnsafeUrlError(`expected a URL string, got ${typeof raw}`);
  const url = parseUrl(raw);
  if (url === undefined) throw new UnsafeUrlError(`not a URL: ${redactUrl(raw)}`);
  const shown = redactUrl(url);
  if (url.username !== '' || url.password !== '') {
    throw new UnsafeUrlError(`${shown} carries credentials in its authority`);
  }
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
  if (!secure) throw new UnsafeUrlError(`${shown} is not https`);
  if (!uploadOrigins.some((allowed) => isUnder(url, allowed))) {
    throw new UnsafeUrlError(`${shown} is not under api.uploadOrigins (${uploadOrigins.join(', ')})`);
  }
  return url;
}

/**
 * When a V4 signed URL stops being accepted, from `X-Goog-Date`
 * (YYYYMMDDTHHMMSSZ) plus `X-Goog-Expires` seconds. Null when either is
 * missing or unreadable: the caller then falls back to what it asked for.
 */
export function signedUrlExpiry(url: URL): Date | null {
  const date = queryParam(url, 'x-goog-date');
  const expires = queryParam(url, 'x-goog-expires');
  if (date === undefined || expires === undefined || !/^\d{1,7}$/.test(expires)) return null;
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const signedAt = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 20240231 over into March; a date that does not round-trip is not a date.
  if (signedAt.getUTCMonth() !== month - 1 || signedAt.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return null;
  }
  return new Date(signedAt.getTime() + Number(expires) * 1000);
}

function isUnder(url: URL, allowed: string): boolean {
  const base = parseUrl(allowed);
  if (base === undefined || url.origin !== base.origin) return false;
  const prefix = base.pathname;
  // `/bucket` must allow `/bucket/x` but not `/bucket-evil/x`.
  return prefix.endsWith('/') ? url.pathname.startsWith(prefix) : url.pathname === prefix || url.pathname.startsWith(`${prefix}/`);
}

/** Google spells these in mixed case; a signer may not, and query names are case-sensitive in URLSearchParams. */
function queryParam(url: URL, lowerName: string): string | undefined {
  for (const [name, value] of url.searchParams) {
    if (name.toLowerCase() === lowerName) return value;
  }
  return undefined;
}
