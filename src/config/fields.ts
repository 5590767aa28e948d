import { z } from 'zod';
import { isLoopbackHost } from '../net/loopback.js';

/*
 * Leaf validators. Every message is an "expected …" phrase and nothing more:
 * `issues.ts` appends the value actually found, so each error reads
 * "expected X, got Y" whichever check failed.
 */

/** An absent or empty (`api:`) section means "all defaults". */
export function orEmpty<T extends z.ZodType>(section: T) {
  return z.preprocess((value) => value ?? {}, section);
}

export function positiveNumber() {
  return z.number({ error: 'expected a number greater than 0' }).positive();
}

export function nonNegativeNumber() {
  return z.number({ error: 'expected a number of 0 or more' }).nonnegative();
}

export function integer(min: number, max?: number) {
  const expected =
    max === undefined ? `expected an integer of ${min} or more` : `expected an integer from ${min} to ${max}`;
  const schema = z.number({ error: expected }).int().min(min);
  return max === undefined ? schema : schema.max(max);
}

export function numberBetween(min: number, max: number) {
  return z.number({ error: `expected a number from ${min} to ${max}` }).min(min).max(max);
}

/** Still relative here; `paths.ts` resolves it against the config file's directory. */
export const pathString = z
  .string({ error: 'expected a path' })
  .min(1, { error: 'expected a non-empty path' })
  .refine((value) => !value.startsWith('~'), {
    error: 'expected a path not starting with ~ (it is not expanded: write the full path)',
  });

/**
 * An endpoint the API key or the audio travels to: https, or plain http to
 * this machine only (the sandbox). Credentials, queries and fragments have no
 * business in it and would end up in logs.
 *
 * The result always ends with `/`, so `new URL('api/…', base)` keeps a path
 * prefix and a prefix test against `https://host/` cannot match
 * `https://host.evil.example/`.
 */
export function serviceUrl() {
  return z.string({ error: 'expected a URL' }).transform((text, ctx) => {
    const problem = serviceUrlProblem(text);
    if (problem === undefined) {
      const url = new URL(text);
      if (!url.pathname.endsWith('/')) url.pathname += '/';
      return url.href;
    }
    ctx.addIssue({ code: 'custom', message: `expected ${problem}`, input: text });
    return z.NEVER;
  });
}

function serviceUrlProblem(text: string): string | undefined {
  if (!URL.canParse(text)) return 'an https:// URL';
  const url = new URL(text);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    return 'an https:// URL (http:// is allowed only for a loopback host such as 127.0.0.1)';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'an https:// URL';
  if (url.username || url.password) return 'a URL without user:password@';
  if (url.search || url.hash) return 'a URL without ?query or #fragment';
  return undefined;
}

/** Sent verbatim as the `Origin` header, which is scheme, host and port only. */
export const origin = z.string({ error: 'expected an origin' }).transform((text, ctx) => {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  const bare = url && !url.username && !url.password && url.pathname === '/' && !url.search && !url.hash;
  if (url && bare && (url.protocol === 'https:' || url.protocol === 'http:')) return url.origin;
  ctx.addIssue({
    code: 'custom',
    message: 'expected an origin like https://studio.example.com (scheme and host, no path)',
    input: text,
  });
  return z.NEVER;
});

export interface ListenAddress {
  /** Without IPv6 brackets, as `net.Server.listen` wants it. */
  host: string;
  port: number;
}

/** `host:port`, with IPv6 hosts in brackets (`[::1]:9464`). Port 0 picks a free one (tests). */
export const listenAddress = z.string({ error: 'expected host:port' }).transform((text, ctx): ListenAddress => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match && port <= 65535) return { host: match[1] ?? match[2] ?? '', port };
  ctx.addIssue({ code: 'custom', message: 'expected host:port such as 127.0.0.1:9464', input: text });
  return z.NEVER;
});
