import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CryomixWatchError } from '../errors.js';
import { isLoopbackHost } from '../net/loopback.js';
import type { HealthProblem } from './health.js';
import type { DaemonMetrics } from './metrics.js';
import { renderStatusPage, type StatusPageData } from './statusPage.js';

/** What the listener shows; every call reads the daemon as it is now. */
export interface StatusSource {
  health(): HealthProblem[];
  metrics: DaemonMetrics;
  page(): Promise<StatusPageData>;
}

export interface HttpListenerOptions {
  host: string;
  port: number;
  /** When set, every request must carry it (Bearer, or as the Basic password so a phone's browser can ask for it). */
  token?: string;
  source: StatusSource;
  /** A request that failed inside (a DB read): logged, answered 500. */
  onError(error: unknown): void;
}

export interface HttpListener {
  /** `http://host:port`, with the port actually bound (0 picks one). */
  readonly url: string;
  close(): Promise<void>;
}

export class HttpListenError extends CryomixWatchError {
  constructor(address: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'the port is already in use (another program, or a second cryomix-watch); pick another port in http.listen'
        : code === 'EADDRNOTAVAIL'
          ? 'no network interface of this machine has that address; fix http.listen'
          : `${(cause as Error).message}; fix http.listen`;
    super('HTTP_LISTEN', `cannot serve /healthz and /metrics on ${address}: ${why}`, { cause });
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Constant-time, so the token cannot be guessed a character at a time. */
function carriesToken(request: IncomingMessage, token: string): boolean {
  const header = request.headers.authorization ?? '';
  const [scheme = '', value = ''] = header.split(' ', 2);
  let offered: string;
  if (scheme.toLowerCase() === 'bearer') offered = value;
  else if (scheme.toLowerCase() === 'basic') offered = Buffer.from(value, 'base64').toString('utf8').split(':').slice(1).join(':');
  else return false;
  return timingSafeEqual(digest(offered), digest(token));
}

function send(response: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/**
 * Without a token the listener is on loopback, where any web page the
 * studio machine opens could still reach it by DNS rebinding (a name of
 * theirs resolving to 127.0.0.1): only names of this machine are answered.
 */
function loopbackHostHeader(request: IncomingMessage): boolean {
  const host = request.headers.host;
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return isLoopbackHost(name);
}

async function answer(request: IncomingMessage, response: ServerResponse, options: HttpListenerOptions): Promise<void> {
  if (options.token === undefined && !loopbackHostHeader(request)) {
    send(response, 421, 'text/plain; charset=utf-8', 'this listener answers only to localhost, 127.0.0.1 or [::1]; set http.token to reach it by another name\n');
    return;
  }
  if (options.token !== undefined && !carriesToken(request, options.token)) {
    send(response, 401, 'text/plain; charset=utf-8', 'a token is required: Authorization: Bearer <http.token>\n', {
      'www-authenticate': 'Basic realm="cryomix-watch", charset="UTF-8"',
    });
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(response, 405, 'text/plain; charset=utf-8', 'read-only: GET or HEAD\n', { allow: 'GET, HEAD' });
    return;
  }
  const path = new URL(request.url ?? '/', 'http://listener').pathname;
  const { source } = options;
  if (path === '/healthz') {
    const problems = source.health();
    const text = problems.length === 0 ? 'ok\n' : problems.map((problem) => `${problem.reason}\n`).join('');
    send(response, problems.length === 0 ? 200 : 503, 'text/plain; charset=utf-8', text);
  } else if (path === '/metrics') {
    send(response, 200, source.metrics.registry.contentType, await source.metrics.registry.metrics());
  } else if (path === '/') {
    send(response, 200, 'text/html; charset=utf-8', renderStatusPage(await source.page()), {
      // No script, no outside resource: a file name crafted as markup can do nothing.
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    });
  } else {
    send(response, 404, 'text/plain; charset=utf-8', 'not found: try /, /healthz or /metrics\n');
  }
}

/**
 * /healthz, /metrics and the status page. Read-only: nothing here changes
 * state, so the worst a caller without the token learns is that it lacks it.
 */
export async function startHttpListener(options: HttpListenerOptions): Promise<HttpListener> {
  const server = createServer((request, response) => {
    answer(request, response, options).catch((error: unknown) => {
      options.onError(error);
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'internal error; see the daemon log\n');
      else response.destroy();
    });
  });
  // Scrapers and phones keep connections open; they must not hold up a stop.
  server.keepAliveTimeout = 5_000;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new HttpListenError(`${host}:${options.port}`, error)));
    server.listen(options.port, options.host, () => resolve());
  });
  // Past startup an error (EMFILE on accept) is reported, not left to kill the daemon and its uploads.
  server.on('error', options.onError);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
