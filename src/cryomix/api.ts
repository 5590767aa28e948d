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
  masteringProgress(sessionId: string, signal?: AbortSignal): Promise<MasteringProgress | null>;

  /**
   * POST /api/mastering with only the settings present. Not idempotent at
   * the vendor: a second call for a running or completed job is a 400
   * (RejectedError), so callers record that they asked before asking, and
   * after a crash ask `masteringProgress` before starting again. Nor does a
   * TransientError prove that no job started (the answer may have been lost).
   */
  startMastering(sessionId: string, settings: MasteringSettings, signal?: AbortSignal): Promise<void>;

  /**
   * POST /api/signed-url/multi-download: one signed GET URL per result file,
   * keyed by its name (`FinalMaster.wav`…). Every URL is validated like an
   * upload URL, against the same `uploadOrigins` (results live in the same
   * storage); one bad URL or a name that is not a plain file name refuses the
   * whole answer with UnsafeUrlError. 400 while the job is not completed.
   */
  requestDownloadUrls(sessionId: string, expirationSeconds: number, signal?: AbortSignal): Promise<Map<string, SignedDownload>>;
}

/** The vendor deletes results 7 days after mastering; masters waiting a day to be downloaded deserve a warning. */
export const DOWNLOAD_WARNING_MS = 24 * 60 * 60_000;

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
  /** How long after signing storage accepts it (X-Goog-Expires, else the lifetime asked for). */
  lifetimeSeconds: number;
}

export type MasteringStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

export interface MasteringProgress {
  status: MasteringStatus;
  /** 0-100. */
  percentComplete: number;
  /** When `completed`: the result files the job produced (the values of `data.processedObjectNames`), when the API listed them. */
  processedObjectNames?: string[];
}

/** The vendor's knobs; the API applies its default to each one left out. Ranges are checked by the config. */
export type MasteringSettings = Partial<Record<MasteringSetting, number>>;

export type MasteringSetting = 'mwa' | 'meq' | 'mha' | 'mma' | 'mla' | 'mca';

export interface SignedDownload {
  /** The signed GET URL. Contains secrets in its query string: never log it whole. */
  url: URL;
}
