/**
 * How long a signed URL must live. A PUT URL cannot resume, so the whole
 * transfer has to fit inside its lifetime; we estimate the transfer from the
 * throughput of the last upload and ask for a lifetime with room to spare.
 * Lifetimes are counted on the monotonic clock from when the URL was asked
 * for: storage checks them against the time the API signed with, so this
 * machine's wall clock, often off on a NAS, has no say.
 */
const MAX_EXPIRY_SECONDS = 604_800;
const SAFETY_MARGIN_MS = 30_000;
/** Before anything was measured, assume a slow studio uplink. */
const ASSUMED_BYTES_PER_SECOND = 1024 * 1024;
const SLOWEST_BYTES_PER_SECOND = 64 * 1024;

export class ThroughputEstimate {
  private bytesPerSecond = ASSUMED_BYTES_PER_SECOND;

  /** Only transfers long enough to say something about the link count. */
  record(bytes: number, durationMs: number): void {
    if (bytes < 1_000_000 || durationMs < 500) return;
    this.bytesPerSecond = Math.max(SLOWEST_BYTES_PER_SECOND, (bytes * 1000) / durationMs);
  }

  /**
   * At the rate last measured, or at `capBytesPerSecond` (this upload's
   * share of the upload cap) when that is slower: a 1 GiB mix under a
   * 1 MB/s cap needs a URL that lives for hours, whatever the link could do.
   */
  expectedMs(bytes: number, capBytesPerSecond: number | null = null): number {
    return (bytes * 1000) / Math.min(this.bytesPerSecond, capBytesPerSecond ?? Infinity);
  }
}

export function requestedExpirySeconds(configuredSeconds: number, expectedMs: number): number {
  const needed = Math.ceil((2 * expectedMs + SAFETY_MARGIN_MS) / 1000);
  return Math.min(MAX_EXPIRY_SECONDS, Math.max(configuredSeconds, needed));
}

/**
 * Whether a URL valid for `lifetimeSeconds` from `askedAt` (performance.now()
 * before the request: signed after it, so never counted late) leaves time
 * for the transfer.
 */
export function lifetimeSuffices(lifetimeSeconds: number, askedAt: number, expectedMs: number, now = performance.now()): boolean {
  return lifetimeSeconds * 1000 - (now - askedAt) >= expectedMs + SAFETY_MARGIN_MS;
}
