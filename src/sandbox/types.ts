/**
 * The sandbox's public contract. `npm start`, `cryomix-watch sandbox` and the
 * integration tests code against these shapes; change them only with them.
 */

export interface SandboxOptions {
  /** Must be a loopback name or address: the sandbox has no real authentication. Default '127.0.0.1'. */
  host?: string;
  /** Default 0: an ephemeral port, read it back from `Sandbox.url`. */
  port?: number;
  /** Default 'sandbox-key'. */
  apiKey?: string;
  /** How long an emulated mastering job takes from start to `completed`. Default 4. */
  masteringSeconds?: number;
}

export interface Sandbox {
  /** API base URL without a trailing slash, e.g. 'http://127.0.0.1:41234'. */
  readonly url: string;
  readonly apiKey: string;
  /** Every signed URL the sandbox issues starts with this, e.g. 'http://127.0.0.1:41234/storage/'. */
  readonly storageOrigin: string;
  readonly faults: FaultInjector;
  /** One entry per successful PUT, in order; the same bytes sent twice show twice. */
  objects(): StoredObject[];
  /** Every API request and every storage PUT/GET attempt, in arrival order. */
  requests(): ApiRequestRecord[];
  /** Closes the server and destroys every open socket, stalled uploads included. */
  close(): Promise<void>;
}

export interface StoredObject {
  sessionId: string;
  uploadFolderName: string;
  objectName: string;
  size: number;
  /** Hex. */
  sha256: string;
  /** Base64, as storage reports it in `x-goog-hash`. */
  md5: string;
  contentType: string;
}

export type Endpoint = 'multi-upload' | 'mastering' | 'percentage' | 'multi-download' | 'put' | 'get';

export interface ApiRequestRecord {
  endpoint: Endpoint;
  /** The request's Session-Id header (API) or the session owning the object (storage); null when unknown. */
  sessionId: string | null;
  /** The HTTP status answered; 0 while in flight or when the sandbox never answered (reset, stall, client abort). */
  status: number;
}

export type FaultTarget = Endpoint;

/**
 * A fault is consumed by the next request to its target, whatever that
 * request's fate, so a test can predict exactly which attempt it hits.
 */
export type Fault =
  /** Answer with this status (API: JSON envelope; storage: XML error), optionally with Retry-After. */
  | { target: FaultTarget; kind: 'status'; status: number; retryAfterSeconds?: number; times?: number }
  /** Destroy the socket once this many body bytes arrived (0: before any body). */
  | { target: 'put'; kind: 'reset'; afterBytes: number; times?: number }
  /**
   * PUT: stop reading once this many body bytes arrived and never answer. GET: send this many bytes of the body, then nothing more.
   * With `forMs`, a hiccup instead: the transfer carries on after that long, and succeeds (a body shorter than
   * `afterBytes` is not held at all).
   */
  | { target: 'put' | 'get'; kind: 'stall'; afterBytes: number; forMs?: number; times?: number }
  /**
   * Issue a URL that storage treats as past its lifetime, so its PUT gets
   * 400 ExpiredToken. The URL's own X-Goog-Date/X-Goog-Expires look valid,
   * as they do to a client whose clock is behind Google's.
   */
  | { target: 'multi-upload' | 'multi-download'; kind: 'expired-url'; times?: number }
  /** Store the PUT but answer with a wrong `x-goog-hash: md5=`. */
  | { target: 'put'; kind: 'bad-md5'; times?: number }
  /** The mastering job this request starts ends `failed` instead of `completed`. */
  | { target: 'mastering'; kind: 'job-failed'; times?: number }
  /**
   * The mastering job this request starts stays `pending` at 0% forever, as
   * a job the vendor never hands to a worker would; a new start for that
   * Session-Id is refused like any start of an unfinished job.
   */
  | { target: 'mastering'; kind: 'stuck-pending'; times?: number }
  /**
   * Answer 3xx with `Location: location`, as a hijacked front end or a
   * misconfigured proxy would. API: before the call is read, like `status`;
   * storage: after the body, like a storage `status`. Default status 307.
   */
  | { target: 'multi-upload' | 'put'; kind: 'redirect'; location: string; status?: RedirectStatus; times?: number }
  | HostileUploadFault;

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

/**
 * A multi-upload answered 200 with something a client must not trust. These
 * spoil a successful answer only: a call the sandbox refuses (401, 400)
 * still consumes the fault and gets its honest refusal.
 */
export type HostileUploadFault =
  /** The file's signed URL is this string, verbatim: another host, userinfo, plain http, a lookalike, not a URL at all. */
  | { target: 'multi-upload'; kind: 'signed-url'; url: string; times?: number }
  /** `upload_object_names` holds a valid signed URL for `objectName` (default `other-<the asked name>`) instead of the asked file. */
  | { target: 'multi-upload'; kind: 'other-object'; objectName?: string; times?: number }
  /** The envelope lacks `data`, or `data` lacks one of its members. */
  | { target: 'multi-upload'; kind: 'missing-field'; field: 'data' | 'upload_folder_name' | 'upload_object_names'; times?: number }
  /** The honest envelope cut in half (a complete HTTP answer whose body is not JSON). */
  | { target: 'multi-upload'; kind: 'malformed-json'; times?: number }
  /** The honest envelope padded to `bytes` of valid JSON, streamed so the sandbox's memory stays flat. */
  | { target: 'multi-upload'; kind: 'huge-json'; bytes: number; times?: number };

export interface FaultInjector {
  /** `times` defaults to 1; faults for one target are consumed in FIFO order. Throws on an invalid fault. */
  add(fault: Fault): void;
  /** Drops every pending fault; the unauthorized switch is left as it is. */
  clear(): void;
  /** While on, every API endpoint answers 401 "unauthorized client". */
  setUnauthorized(on: boolean): void;
}
