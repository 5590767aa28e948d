import { parseRetryAfter } from '../net/retryAfter.js';
import type {
  CryomixApi,
  MasteringProgress,
  MasteringSetting,
  MasteringSettings,
  SignedDownload,
  SignedUpload,
  UploadUrlRequest,
} from './api.js';
import { readDownloadUrls, readProgress } from './answers.js';
import { MalformedAnswer, errorMessage, objectField, stringField, successData } from './envelope.js';
import { RejectedError, TransientError, UnauthorizedError, UnsafeUrlError } from './errors.js';
import { describeNetworkFailure, readCapped } from '../net/http.js';
import { checkOptions, isHeaderValue, type ClientOptions } from './options.js';
import { redactUrl } from '../net/redact.js';
import { undici } from '../net/undici.js';
import { signedUrlLifetimeSeconds, validateSignedUrl } from './signedUrl.js';

export type { ApiAnswer, ClientOptions } from './options.js';
export { signedUrlLifetimeSeconds, validateSignedUrl } from './signedUrl.js';

/** Answers are a few hundred bytes; a bigger one is a fault, and must not exhaust memory. */
const MAX_ANSWER_BYTES = 1024 * 1024;

const MULTI_UPLOAD = '/api/signed-url/multi-upload';
const PERCENTAGE = '/api/percentage';
const MASTERING = '/api/mastering';
const MULTI_DOWNLOAD = '/api/signed-url/multi-download';

const MASTERING_SETTINGS: readonly MasteringSetting[] = ['mwa', 'meq', 'mha', 'mma', 'mla', 'mca'];

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
      return { url, uploadFolderName, lifetimeSeconds: signedUrlLifetimeSeconds(url) ?? upload.expirationSeconds };
    });
  }

  async masteringProgress(sessionId: string, signal?: AbortSignal): Promise<MasteringProgress | null> {
    const endpoint = `GET ${PERCENTAGE}`;
    const answer = await this.#send(endpoint, sessionId, PERCENTAGE, undefined, signal);
    // 400 means "no such session or no status yet", which still proves the key was accepted.
    if (answer.statusCode === 400) return null;
    return this.#decode(endpoint, answer, readProgress);
  }

  async startMastering(sessionId: string, settings: MasteringSettings, signal?: AbortSignal): Promise<void> {
    const endpoint = `POST ${MASTERING}`;
    const answer = await this.#send(endpoint, sessionId, MASTERING, masteringBody(settings), signal);
    // `data` is documented as null; whatever it holds, the 2xx envelope is the answer.
    this.#decode(endpoint, answer, () => undefined);
  }

  async requestDownloadUrls(sessionId: string, expirationSeconds: number, signal?: AbortSignal): Promise<Map<string, SignedDownload>> {
    const endpoint = `POST ${MULTI_DOWNLOAD}`;
    const answer = await this.#send(endpoint, sessionId, MULTI_DOWNLOAD, { expiration_seconds: expirationSeconds }, signal);
    return this.#decode(endpoint, answer, (data) => readDownloadUrls(data, this.#options.uploadOrigins));
  }

  async #send(endpoint: string, sessionId: string, path: string, json?: unknown, signal?: AbortSignal): Promise<Answer> {
    if (!isHeaderValue(sessionId)) throw new TypeError(`${endpoint}: Session-Id must be printable ASCII, got ${JSON.stringify(sessionId)}`);
    const { apiKey, requestTimeoutMs, dispatcher } = this.#options;
    const headers: Record<string, string> = { 'x-api-key': apiKey, 'session-id': sessionId, source: 'Mastering API' };
    if (this.#origin !== undefined) headers.origin = this.#origin;
    if (json !== undefined) headers['content-type'] = 'application/json';
    try {
      const { request } = undici();
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
      this.#options.onAnswer?.({ endpoint, statusCode: response.statusCode, ...answerDate(response.headers.date) });
      return { statusCode: response.statusCode, text, truncated, headers: response.headers };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      this.#options.onAnswer?.({ endpoint });
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

function answerDate(header: string | string[] | undefined): { date?: Date } {
  const date = typeof header === 'string' ? new Date(header) : undefined;
  return date === undefined || Number.isNaN(date.getTime()) ? {} : { date };
}

/** What `AbortSignal.timeout` rejects with, the overall limit on one call. */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === 'TimeoutError';
}

/**
 * The body of POST /api/mastering: the settings present, nothing else, so
 * the API's own default applies to each one left out. Ranges are the
 * config's to check; a value JSON cannot carry is a bug upstream.
 */
function masteringBody(settings: MasteringSettings): Record<string, number> {
  const body: Record<string, number> = {};
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined) continue;
    if (!(MASTERING_SETTINGS as readonly string[]).includes(name)) {
      throw new TypeError(`POST ${MASTERING}: unknown mastering setting ${JSON.stringify(name)}; expected one of ${MASTERING_SETTINGS.join(', ')}`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError(`POST ${MASTERING}: expected \`${name}\` to be a finite number, got \`${String(value)}\` (${typeof value})`);
    }
    body[name] = value;
  }
  return body;
}
