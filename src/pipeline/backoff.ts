/** Retry policy as data (restic/undici style): the pipeline only asks "when next?". */
export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** A server's Retry-After is honoured, but a hostile or confused one cannot park a file for days. */
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/**
 * Delay before attempt `attempt + 1`, after `attempt` failures (1-based):
 * doubling from the initial delay, capped, with "equal jitter" (half fixed,
 * half random) so a burst of failures does not retry in lockstep yet never
 * retries almost immediately. A Retry-After from the server wins.
 */
export function retryDelayMs(policy: BackoffPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined) return Math.round(Math.min(Math.max(0, retryAfterMs), MAX_RETRY_AFTER_MS));
  const exponential = policy.initialDelayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  // Whole milliseconds: due times are stored as integers (PostgreSQL's bigint refuses a fraction).
  return Math.round(capped / 2 + random() * (capped / 2));
}
