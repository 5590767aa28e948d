import type { Dispatcher } from 'undici';
import { ConfigError } from '../errors.js';
import { isLoopbackHost } from '../net/loopback.js';

export interface ClientOptions {
  /** `https://platform.cryo-mix.com`; `http://` only on loopback (the sandbox). A path prefix is kept. */
  baseUrl: string;
  /** Sent as `X-Api-Key` and nowhere else: never in a message, a log or an error. */
  apiKey: string;
  /** Sent as `Origin` when the key is bound to a list of domains. */
  origin?: string;
  /** Signed URLs must be under one of these (SPEC guarantee 6). */
  uploadOrigins: string[];
  requestTimeoutMs: number;
  /** Tests and the sandbox pass their own Agent; otherwise undici's global one. */
  dispatcher?: Dispatcher;
  /** Told of every answer (and of every call that got none): metrics count them, `check` reads the clock. */
  onAnswer?: (answer: ApiAnswer) => void;
}

/** One API call's outcome, without its body or anything secret. */
export interface ApiAnswer {
  /** `POST /api/signed-url/multi-upload`, as in error messages. */
  endpoint: string;
  /** Absent when no answer came (network failure, timeout). */
  statusCode?: number;
  /** The answer's `Date` header, when it had a valid one: the API's clock. */
  date?: Date;
}

export interface CheckedOptions {
  base: URL;
  origin: string | undefined;
}

/**
 * Refuses options the client could not use safely, once, when it is built,
 * naming the config key as the user wrote it. The key itself is never quoted.
 */
export function checkOptions(options: ClientOptions): CheckedOptions {
  if (options.apiKey === '' || !isHeaderValue(options.apiKey)) {
    throw new ConfigError('', 'the API key is empty or contains characters an HTTP header cannot carry');
  }
  if (!(Number.isFinite(options.requestTimeoutMs) && options.requestTimeoutMs > 0)) {
    throw new ConfigError('api.requestTimeoutSeconds', `expected a positive number, got ${options.requestTimeoutMs / 1000}`);
  }
  if (options.uploadOrigins.length === 0) {
    throw new ConfigError('api.uploadOrigins', 'expected at least one origin, got an empty list');
  }
  options.uploadOrigins.forEach((entry, index) => checkHttpUrl(`api.uploadOrigins[${index}]`, entry));
  const base = checkHttpUrl('api.baseUrl', options.baseUrl);
  const origin = options.origin === undefined ? undefined : checkHttpUrl('api.origin', options.origin).origin;
  return { base, origin };
}

/** The API key and audio must not cross a network in clear; loopback is the sandbox. */
function checkHttpUrl(keyPath: string, raw: string): URL {
  if (!URL.canParse(raw)) throw new ConfigError(keyPath, `expected an https:// URL, got ${JSON.stringify(raw)}`);
  const url = new URL(raw);
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
  if (!secure) throw new ConfigError(keyPath, `expected https:// (http:// only for loopback), got ${url.protocol}//${url.host}`);
  if (url.username !== '' || url.password !== '') throw new ConfigError(keyPath, 'credentials in the URL are not allowed');
  if (url.search !== '' || url.hash !== '') throw new ConfigError(keyPath, 'expected no query string or fragment');
  return url;
}

export function isHeaderValue(value: string): boolean {
  return /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value);
}
