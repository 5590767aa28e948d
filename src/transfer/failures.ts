import { CryomixWatchError, TransientError } from '../errors.js';
import { describeNetworkFailure } from '../net/http.js';
import { redactUrl } from '../net/redact.js';
import { parseRetryAfter } from '../net/retryAfter.js';
import { StorageError, type Transfer } from './errors.js';
import { parseStorageError } from './storageAnswer.js';

/**
 * What a failed request to a signed storage URL means, the same for a PUT
 * and a GET: the pipeline retries TransientErrors, asks for a fresh URL on
 * the StorageErrors it knows (400 ExpiredToken, 403), and fails the rest.
 * Messages name the URL only through redactUrl: its query is a credential.
 */

/** Storage error bodies are a few hundred bytes of XML. */
export const MAX_ERROR_BODY = 64 * 1024;

type Headers = Record<string, string | string[] | undefined>;

/**
 * A non-2xx answer: 408, 429 and 5xx are transient (honouring Retry-After),
 * a 3xx is refused because the signed query must not travel to another host,
 * anything else is a StorageError carrying storage's XML `<Code>` verbatim.
 */
export function storageRefusal(transfer: Transfer, statusCode: number, headers: Headers, body: string): CryomixWatchError {
  const { code, message } = parseStorageError(body);
  const said = message ?? `no details (HTTP ${statusCode})`;
  if (statusCode === 408 || statusCode === 429 || statusCode >= 500) {
    const what = code === undefined ? `${statusCode}` : `${statusCode} ${code}`;
    const cannot = transfer === 'upload' ? 'could not take the upload now' : 'could not serve the download now';
    return new TransientError(`storage ${cannot} (${what}): ${said}`, {
      statusCode,
      retryAfterMs: parseRetryAfter(headers['retry-after']),
    });
  }
  if (statusCode >= 300 && statusCode < 400) {
    const location = headers.location;
    const target = typeof location === 'string' ? ` to ${redactUrl(location)}` : '';
    return new StorageError(statusCode, code, `storage redirected the ${transfer}${target}; redirects are not followed`, transfer);
  }
  return new StorageError(statusCode, code, said, transfer);
}

/** The reason a StallWatchdog aborts a transfer with. */
export function stallReason(transfer: Transfer, url: URL): (windowMs: number) => TransientError {
  return (windowMs) => new TransientError(`${where(transfer, url)} stalled: nothing moved for ${windowMs} ms`);
}

/**
 * What the HTTP library's rejection means once the caller has ruled out its own
 * reasons (shutdown, stall, a local file problem): our typed errors pass
 * through, network failures become TransientErrors, anything else (a bug)
 * is returned as it is.
 */
export function networkFailure(transfer: Transfer, url: URL, error: unknown, detail = ''): unknown {
  if (error instanceof CryomixWatchError) return error;
  const failure = describeNetworkFailure(error);
  if (failure === undefined) return error;
  return new TransientError(`${where(transfer, url)} failed${detail} (${failure})`, { cause: error });
}

function where(transfer: Transfer, url: URL): string {
  return transfer === 'upload' ? `upload to ${redactUrl(url)}` : `download from ${redactUrl(url)}`;
}

/** The caller's shutdown signal and the stall watchdog's, as one. */
export function transferSignal(stall: AbortSignal, shutdown: AbortSignal | undefined): AbortSignal {
  return shutdown === undefined ? stall : AbortSignal.any([shutdown, stall]);
}

export const PROGRESS_INTERVAL_MS = 250;

/** A progress callback that reports at most every PROGRESS_INTERVAL_MS. */
export interface Throttled<A extends unknown[]> {
  (...args: A): void;
  /** Drops a report still pending; later calls report nothing. */
  cancel(): void;
  /** What a report threw (a state DB failure, say): reports stop, and the transfer must fail with it. */
  readonly failure: unknown;
}

/**
 * Calls `report` with the latest arguments at most every
 * PROGRESS_INTERVAL_MS, the first time one interval after it was made: a
 * transfer shorter than that reports nothing (each report may be a commit
 * to the state DB). A value held back is reported when its interval ends,
 * so a transfer that stalls still shows how far it got. Callers report the
 * final count themselves, and cancel when the transfer ends.
 */
export function throttled<A extends unknown[]>(report: ((...args: A) => void | Promise<void>) | undefined): Throttled<A> {
  let reportedAt = Date.now();
  let latest: A | undefined;
  let timer: NodeJS.Timeout | undefined;
  let over = false;
  let failure: unknown;
  const flush = () => {
    timer = undefined;
    reportedAt = Date.now();
    const args = latest;
    latest = undefined;
    if (args === undefined || over) return;
    // Thrown or rejected from a timer it would crash the process; the transfer checks for it instead.
    Promise.resolve()
      .then(() => report?.(...args))
      .catch((error: unknown) => {
        failure ??= error;
        over = true;
      });
  };
  const progress = (...args: A) => {
    if (report === undefined || over) return;
    latest = args;
    timer ??= setTimeout(flush, Math.max(0, reportedAt + PROGRESS_INTERVAL_MS - Date.now()));
  };
  return Object.defineProperties(progress, {
    cancel: {
      value: () => {
        over = true;
        clearTimeout(timer);
        timer = undefined;
      },
    },
    failure: { get: () => failure },
  }) as Throttled<A>;
}
