import type { CheckLine } from './preflight.js';

/**
 * What a wrong clock breaks here. Not uploads: a signed URL's lifetime is
 * counted from when it was asked for, on the monotonic clock, and storage
 * judges it by the API's clock. HTTPS is: certificates are checked against
 * this clock, and one a day or more off can refuse a freshly issued one as
 * not yet valid. Below that, only what people read is off: times in the log
 * and in `list`, and a server's Retry-After given as a date.
 */
export const CLOCK_FAIL_MS = 24 * 60 * 60_000;
export const CLOCK_WARN_MS = 60_000;
/** An HTTP Date header has whole seconds: the API's clock was somewhere in [date, date + 1 s). */
const DATE_RESOLUTION_MS = 1000;

export interface ClockSkew {
  /** Positive: the local clock is ahead of the API's. */
  skewMs: number;
  /** How far off the estimate may be: half the Date header's second, half the round trip. */
  uncertaintyMs: number;
}

/**
 * How far the local clock is from the API's, from one answer's Date header
 * and the local times the request was sent and its answer read. The server
 * stamped the header somewhere in between: the midpoint is the best guess.
 */
export function clockSkew(local: { sentAt: number; receivedAt: number }, apiDate: Date): ClockSkew {
  const localMidpoint = (local.sentAt + local.receivedAt) / 2;
  const apiMidpoint = apiDate.getTime() + DATE_RESOLUTION_MS / 2;
  return { skewMs: localMidpoint - apiMidpoint, uncertaintyMs: DATE_RESOLUTION_MS / 2 + (local.receivedAt - local.sentAt) / 2 };
}

function inWords(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${(minutes / 60).toFixed(1)} h`;
}

const NTP_FIX = 'turn on time synchronisation: sudo timedatectl set-ntp true (on a NAS: enable its NTP client), then run check again';

/** The check line for a measured skew. Only a skew beyond doubt FAILs. */
export function clockLine({ skewMs, uncertaintyMs }: ClockSkew, against: string): CheckLine {
  const check = 'clock';
  const off = Math.abs(skewMs);
  const direction = Math.round(off / 1000) === 0 ? 'in step with' : `${inWords(skewMs)} ${skewMs >= 0 ? 'ahead of' : 'behind'}`;
  const said = `${direction} ${against} (± ${inWords(uncertaintyMs)}, from its Date header)`;
  if (off - uncertaintyMs > CLOCK_FAIL_MS) {
    return { verdict: 'FAIL', check, detail: `${said}: over a day off, HTTPS certificates may be refused as expired or not yet valid; ${NTP_FIX}` };
  }
  if (off > CLOCK_WARN_MS) {
    return {
      verdict: 'WARN',
      check,
      detail: `${said}: uploads are not affected, but times in the log and in \`list\` are off by as much, and a day off breaks HTTPS; ${NTP_FIX}`,
    };
  }
  return { verdict: 'PASS', check, detail: said };
}
