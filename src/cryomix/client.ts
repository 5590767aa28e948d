import { request } from 'undici';
import { parseRetryAfter } from '../net/retryAfter.js';
import type { CryomixApi, MasteringProgress, MasteringStatus, SignedUpload, UploadUrlRequest } from './api.js';
import { MalformedAnswer, errorMessage, objectField, stringField, successData } from './envelope.js';
import { RejectedError, TransientError, UnauthorizedError, UnsafeUrlError } from './errors.js';
import { describeNetworkFailure, readCapped } from '../net/http.js';
import { checkOptions, isHeaderValue, type ClientOptions } from './options.js';
import { redactUrl } from '../net/redact.js';
import { signedUrlExpiry, validateSignedUrl } from './signedUrl.js';

export type { ClientOptions } from './options.js';
export { signedUrlExpiry, validateSignedUrl } from './signedUrl.js';

/** Answers are a few hundred bytes; a bigger one is a fault, and must not exhaust memory. */
const MAX_ANSWER_BYTES = 1024 * 1024;

const MULTI_UPLOAD = '/api/signed-url/multi-upload';
const PERCENTAGE = '/api/percentage';

const MASTERING_STATUSES: readonly MasteringStatus[] = ['pending', 'processing', 'completed', 'failed', 'cancelled'];

interface Answer {
  statusCode: number;
  text: string;
  truncated: boolean;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * The Cryo-mix API over HTTP. Every call is safe to repeat with the same
 * Session-Id. Redirects are never followed: undici's `request()` does not
 * follow them, and a 3xx is refused below, so the key never reaches a host
 * the user did not configure.
 */
export class CryomixClient implements CryomixApi {
  readonly #options: ClientOptions;
  readonly #base: URL;
  readonly #origin: string | undefined;

  constructor(options: ClientOptions) {
    const checked = checkOptions(options);
    this.#options = { ...options, uploadOrigins: [...options.uploadOrigins] };
    this.#base = checked.base;
    this.#origin = checked.origin;
  }

  async requestUploadUrl(upload: UploadUrlRequest): Promise<SignedUpload> {
    const endpoint = `POST ${MULTI_UPLOAD}`;
    // Taken before the call: a fallback expiry must err early, never late.
    const requestedAt = Date.now();
    const answer = await this.#send(
      endpoint,
      upload.sessionId,
      MULTI_UPLOAD,
      { object_names: [upload.objectName], content_type: upload.contentType, expiration_seconds: upload.expirationSeconds },
      upload.signal,
    );
    return this.#decode(endpoint, answer, (data) => {
      const uploadFolderName = stringField(data, 'upload_folder_name');
      const urls = objectField(data, 'upload_object_names');
      const names = Object.keys(urls);
      if (names.length !== 1 || names[0] !== upload.objectName) {
        throw new UnsafeUrlError(
          `the API answered for another file: asked for ${JSON.stringify(upload.objectName)}, got ${JSON.stringify(names.slice(0, 5))}`,
        );
      }
      const url = validateSignedUrl(urls[upload.objectName], this.#options.uploadOrigins);
      const expiresAt = signedUrlExpiry(url) ?? new Date(requestedAt + upload.expirationSeconds * 1000);
      return { url, uploadFolderName, expiresAt };
    });
  }

  async masteringProgress(sessionId: string): Promise<MasteringProgress | null> {
    const endpoint = `GET ${PERCENTAGE}`;
    const answer = await this.#send(endpoint, sessionId, PERCENTAGE);
    // 400 means "no such session or no status yet", which still proves the key was accepted.
    if (answer.statusCode === 400) return null;
    return this.#decode(endpoint, answer, (data) => {
      const status = stringField(data, 'status');
      if (!(MASTERING_STATUSES as readonly string[]).includes(status)) {
        throw new MalformedAnswer(`"status" is "${status.slice(0, 40)}", not a documented mastering status`);
      }
      return { status: status as MasteringStatus, percentComplete: percentage(data) };
    });
  }

  async #send(endpoint: string, sessionId: string, path: string, json?: unknown, signal?: AbortSignal): Promise<Answer> {
    if (!isHeaderValue(sessionId)) throw new TypeError(`${endpoint}: Session-Id must be printable ASCII, got ${JSON.stringify(sessionId)}`);
    const { apiKey, requestTimeoutMs, dispatcher } = this.#options;
    const headers: Record<string, string> = { 'x-api-key': apiKey, 'session-id': sessionId, source: 'Mastering API' };
    if (this.#origin !== undefined) headers.origin = this.#origin;
    if (json !== undefined) headers['content-type'] = 'application/json';
    try {
      const response = await request(this.#url(path), {
        method: json === undefined ? 'GET' : 'POST',
        headers,
        body: json === undefined ? null : JSON.stringify(json),
        headersTimeout: requestTimeoutMs,
        bodyTimeout: requestTimeoutMs,
        signal: signal === undefined ? AbortSignal.timeout(requestTimeoutMs) : AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)]),
        ...(dispatcher === undefined ? {} : { dispatcher }),
      });
      const { text, truncated } = await readCapped(response.body, MAX_ANSWER_BYTES);
      return { statusCode: response.statusCode, text, truncated, headers: response.headers };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const failure = isTimeout(error) ? `nothing within ${requestTimeoutMs} ms` : describeNetworkFailure(error);
      if (failure === undefined) throw error;
      throw new TransientError(`${endpoint}: no answer from the Cryo-mix API at ${redactUrl(this.#base)} (${failure})`, {
        cause: error,
      });
    }
  }

  /**
   * Maps an answer to the typed errors of the CryomixApi contract, or hands
   * the envelope's `data` to `read`. A 2xx whose body is not what the API
   * documents (bad JSON, a missing field, over 1 MiB) is a TransientError,
   * not a rejection: the likeliest cause is a vendor deploy or a proxy page,
   * both of which pass, and the backoff keeps us from hammering meanwhile.
   */
  #decode<T>(endpoint: string, answer: Answer, read: (data: unknown) => T): T {
    const { statusCode } = answer;
    if (statusCode === 401) throw new UnauthorizedError(endpoint);
    if (statusCode === 408 || statusCode === 429 || statusCode >= 500) {
      throw new TransientError(`${endpoint}: the Cryo-mix API answered ${statusCode}: ${this.#said(answer)}`, {
        statusCode,
        retryAfterMs: parseRetryAfter(answer.headers['retry-after']),
      });
    }
    if (statusCode >= 300 && statusCode < 400) {
      const location = answer.headers.location;
      const target = typeof location === 'string' ? ` to ${redactUrl(location)}` : '';
      throw new RejectedError(endpoint, statusCode, `the API redirected${target}; redirects are refused so the key stays with api.baseUrl`);
    }
    if (statusCode < 200 || statusCode >= 300) throw new RejectedError(endpoint, statusCode, this.#said(answer));
    try {
      if (answer.truncated) throw new MalformedAnswer(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
      return read(successData(answer.text));
    } catch (error) {
      if (!(error instanceof MalformedAnswer)) throw error;
      throw new TransientError(`${endpoint}: the Cryo-mix API sent a malformed answer (${statusCode}): ${this.#scrub(error.message)}`, {
        statusCode,
      });
    }
  }

  /** The API's own words, minus our key in case an error page echoes the request back. */
  #said(answer: Answer): string {
    return this.#scrub(errorMessage(answer.text, answer.statusCode));
  }

  #scrub(text: string): string {
    return text.replaceAll(this.#options.apiKey, '<api key>');
  }

  #url(path: string): URL {
    const url = new URL(this.#base);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
    return url;
  }
}

/** What `AbortSignal.timeout` rejects with, the overall limit on one call. */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === 'TimeoutError';
}

/** Documented as 0-100; a numeric string is accepted because the type is not documented. */
function percentage(data: unknown): number {
  const raw = (data as Record<string, unknown>).percentage_complete;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new MalformedAnswer(`"percentage_complete" is ${raw === undefined ? 'missing' : typeof raw}, expected a number`);
  }
  return Math.min(100, Math.max(0, value));
}
