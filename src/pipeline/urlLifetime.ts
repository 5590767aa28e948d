/**
 * How long a signed URL must live. A PUT URL cannot resume, so the whole
 * transfer has to fit inside its lifetime; we estimate the transfer from the
 * throughput of the last upload and ask for a lifetime with room to spare.
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

  expectedMs(bytes: number): number {
    return (bytes * 1000) / this.bytesPerSecond;
  }
}

export function requestedExpirySeconds(configuredSeconds: number, expectedMs: number): number {
  const needed = Math.ceil((2 * expectedMs + SAFETY_MARGIN_MS) / 1000);
  return Math.min(MAX_EXPIRY_SECONDS, Math.max(configuredSeconds, needed));
}

export function lifetimeSuffices(expiresAt: Date, expectedMs: number, now = Date.now()): boolean {
  return expiresAt.getTime() - now >= expectedMs + SAFETY_MARGIN_MS;
}
