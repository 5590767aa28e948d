/**
 * The Cryo-mix Mastering API as the pipeline needs it. The real service and
 * the embedded sandbox both answer this interface through the same HTTP
 * client; tests may put a double behind it.
 *
 * Contract for implementations:
 * - every call about one file carries that file's Session-Id; callers choose
 *   and persist it before the first call, so calls must be safe to repeat;
 * - failures are thrown as the typed errors in `./errors.ts` and nothing
 *   else: `UnauthorizedError` (401), `RejectedError` (other 4xx, carries the
 *   API's message), `TransientError` (network, timeout, 5xx, 408, 429),
 *   `UnsafeUrlError` (the API answered with a URL we refuse to use).
 */
export interface CryomixApi {
  /** POST /api/signed-url/multi-upload for one object; the URL is already validated. */
  requestUploadUrl(request: UploadUrlRequest): Promise<SignedUpload>;

  /**
   * GET /api/percentage. Used by `check` and the 401 pause probe: any answer
   * other than 401 proves the key, so a 400 "Session-Id not found" resolves
   * with `null` instead of throwing.
   */
  masteringProgress(sessionId: string): Promise<MasteringProgress | null>;
}

export interface UploadUrlRequest {
  sessionId: string;
  objectName: string;
  contentType: string;
  expirationSeconds: number;
  /** Shutdown: abandons the request; the abort reason is thrown as is, not as a TransientError. */
  signal?: AbortSignal;
}

export interface SignedUpload {
  /** The signed PUT URL. Contains secrets in its query string: never log it whole. */
  url: URL;
  uploadFolderName: string;
  /** When the signature stops being accepted (X-Goog-Date + X-Goog-Expires). */
  expiresAt: Date;
}

export type MasteringStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

export interface MasteringProgress {
  status: MasteringStatus;
  percentComplete: number;
}
