import { MINUTES_PER_DAY, type Schedule, type ScheduleWindow } from '../config/schedule.js';

/*
 * Which upload limit is in force at a given instant, and until when.
 *
 * A window's boundaries are local times in the schedule's zone. Each one
 * takes effect at the first instant the local clock reads that time or
 * later: a time skipped by a spring-forward gap at the end of the gap, a
 * time repeated by a fall-back at its first occurrence. So the repeated hour
 * does not reopen a window that already ended, nor close one that is open.
 *
 * Pure: the clock is the caller's `now`; time zone rules come from Intl.
 */

export interface LimitInForce {
  /** Bytes per second, null for no limit, or `pause`. */
  limit: number | null | 'pause';
  /** `base`, or `schedule: ` and the window's label, such as `schedule: Mon-Fri 09:00-19:00`. */
  reason: string;
  /**
   * Epoch ms at which `limit` or `reason` next changes. Null when neither
   * changes within the next 8 days: without a schedule, or when one window
   * covers the whole week.
   */
  nextChangeAt: number | null;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** A weekly timetable repeats within 7 days; the 8th covers a DST shift and a window running past midnight. */
const LOOKAHEAD_DAYS = 8;
const LOOKAHEAD_MS = LOOKAHEAD_DAYS * DAY_MS;

export function limitAt(base: number | null, schedule: Schedule | undefined, now: number): LimitInForce {
  const baseLimit = { limit: base, reason: 'base' };
  if (schedule === undefined) return { ...baseLimit, nextChangeAt: null };

  const spans = spansAround(schedule, now);
  const inForceAt = (instant: number) => {
    const span = spans.find(({ from, until }) => from <= instant && instant < until);
    return span === undefined ? baseLimit : { limit: span.window.limit, reason: `schedule: ${span.window.label}` };
  };
  const current = inForceAt(now);
  const nextChangeAt = spans
    .flatMap(({ from, until }) => [from, until])
    .filter((instant) => instant > now && instant <= now + LOOKAHEAD_MS)
    .sort((a, b) => a - b)
    .find((instant) => {
      const next = inForceAt(instant);
      return next.limit !== current.limit || next.reason !== current.reason;
    });
  return { ...current, nextChangeAt: nextChangeAt ?? null };
}

/** One occurrence of a window, as instants: [from, until). Empty when DST swallowed it whole. */
interface Span {
  window: ScheduleWindow;
  from: number;
  until: number;
}

/** Every occurrence from yesterday's (which may run past midnight into now) to the end of the lookahead. */
function spansAround(schedule: Schedule, now: number): Span[] {
  const zone = schedule.timezone;
  const localToday = Math.floor((now + offsetAt(zone, now)) / DAY_MS) * DAY_MS;
  const spans: Span[] = [];
  for (let dayOffset = -1; dayOffset <= LOOKAHEAD_DAYS; dayOffset += 1) {
    const localMidnight = localToday + dayOffset * DAY_MS;
    // Local times are held as if they were UTC, so the UTC weekday is the local one; 0 = Monday.
    const weekday = (new Date(localMidnight).getUTCDay() + 6) % 7;
    for (const window of schedule.windows) {
      if (!window.days.includes(weekday)) continue;
      const endMinute = window.endMinute > window.startMinute ? window.endMinute : window.endMinute + MINUTES_PER_DAY;
      spans.push({
        window,
        from: firstInstantAt(zone, localMidnight + window.startMinute * MINUTE_MS),
        until: firstInstantAt(zone, localMidnight + endMinute * MINUTE_MS),
      });
    }
  }
  return spans;
}

/** The first instant at which the clock in `zone` reads `local` (ms, as if UTC) or later. */
function firstInstantAt(zone: string, local: number): number {
  // Any instant whose clock reads `local` lies within 14 h of it (no zone is
  // further from UTC), so a day either side are the offsets in force before
  // and after any change that could matter here.
  const offsets = [offsetAt(zone, local - DAY_MS), offsetAt(zone, local + DAY_MS)];
  const instants = offsets.filter((offset) => offsetAt(zone, local - offset) === offset).map((offset) => local - offset);
  if (instants.length > 0) return Math.min(...instants);
  // No instant reads `local`: it lies in a spring-forward gap, which ends
  // somewhere between the instants the two offsets would give.
  const [before = 0, after = 0] = offsets;
  return firstInstantWithOffset(zone, after, local - after, local - before);
}

/** Binary search, given that the offset is `offset` at `last` and not yet at `first`. */
function firstInstantWithOffset(zone: string, offset: number, first: number, last: number): number {
  let notYet = first;
  let already = last;
  while (already - notYet > 1) {
    const middle = Math.floor((notYet + already) / 2);
    if (offsetAt(zone, middle) === offset) already = middle;
    else notYet = middle;
  }
  return already;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** How far the clock in `zone` is ahead of UTC at `instant`, in ms. */
function offsetAt(zone: string, instant: number): number {
  let formatter = formatters.get(zone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, formatter);
  }
  const parts = formatter.formatToParts(instant);
  const field = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((part) => part.type === type)?.value);
  const local = Date.UTC(field('year'), field('month') - 1, field('day'), field('hour'), field('minute'), field('second'));
  // The formatter drops milliseconds.
  return local - Math.floor(instant / 1000) * 1000;
}
