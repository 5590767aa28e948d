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
 * How many seconds a V4 signed URL is accepted after it was signed
 * (`X-Goog-Expires`); null when missing or unreadable, and the caller falls
 * back to what it asked for. `X-Goog-Date` is not read: it is the API's
 * clock, and comparing it with ours would blame a correct URL on a NAS
 * whose clock is off. The lifetime is counted from when we asked instead.
 */
export function signedUrlLifetimeSeconds(url: URL): number | null {
  const expires = queryParam(url, 'x-goog-expires');
  return expires !== undefined && /^\d{1,7}$/.test(expires) ? Number(expires) : null;
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
