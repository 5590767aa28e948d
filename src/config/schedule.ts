import { z } from 'zod';
import { rate } from './rate.js';

/*
 * `uploads.schedule`: a weekly timetable of upload limits in the studio's
 * local time. Outside every window the base limit applies, so windows must
 * not overlap: which of two would win is not something to guess.
 *
 *   schedule:
 *     timezone: Europe/Berlin
 *     windows:
 *       - { days: Mon-Fri, hours: 09:00-19:00, limit: 2 MB/s }
 *       - { days: Fri, hours: 22:00-06:00, limit: pause }
 */

export interface ScheduleWindow {
  /** 0 = Monday … 6 = Sunday, ascending, each once. */
  readonly days: readonly number[];
  readonly startMinute: number;
  /**
   * Exclusive; 1440 for 24:00. Not above `startMinute`: the window runs
   * past midnight and ends at this minute of the next day.
   */
  readonly endMinute: number;
  /** Bytes per second, null for no limit, or `pause`. */
  readonly limit: number | null | 'pause';
  /** Days and hours as written, such as `Mon-Fri 09:00-19:00`, for status lines and errors. */
  readonly label: string;
}

export interface Schedule {
  /** An IANA name that `Intl.DateTimeFormat` knows. */
  readonly timezone: string;
  readonly windows: readonly ScheduleWindow[];
}

export const MINUTES_PER_DAY = 24 * 60;

const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const;

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const DAYS_EXPECTED = 'expected days such as "Mon-Fri", "Sat", "Mon,Wed,Fri" or "Fri-Mon"';
const HOURS_EXPECTED = 'expected hours such as "09:00-19:00" (HH:MM-HH:MM, 24-hour clock)';
const TIMEZONE_EXPECTED =
  'expected an IANA time zone such as "Europe/Berlin": the studio\'s, which this machine\'s own zone may not be';

/** A string field read by `parse`, keeping the text as written beside what it means. */
function textField<T>(expected: string, parse: (text: string) => Parsed<T>) {
  return z.string({ error: expected }).transform((text, ctx) => {
    const parsed = parse(text);
    if (parsed.ok) return { text, value: parsed.value };
    ctx.addIssue({ code: 'custom', message: parsed.error, input: text });
    return z.NEVER;
  });
}

/** Three-letter English names in any case, joined by `,`; `A-B` runs from A to B and may wrap past Sunday. */
function parseDays(text: string): Parsed<number[]> {
  const days = new Set<number>();
  for (const item of text.split(',')) {
    const names = item.split('-').map((name) => name.trim());
    if (names.length > 2) return { ok: false, error: `${DAYS_EXPECTED} ("${item.trim()}" is not a day or a range)` };
    const indices = names.map((name) => DAY_NAMES.findIndex((day) => day.slice(0, 3).toLowerCase() === name.toLowerCase()));
    const unknown = names.find((_, position) => indices[position] === -1);
    if (unknown !== undefined) {
      return { ok: false, error: `expected days from Mon, Tue, Wed, Thu, Fri, Sat, Sun, as in "Mon-Fri" or "Mon,Wed,Fri" ("${unknown}" is not one)` };
    }
    const [first = 0, last = first] = indices;
    for (let day = first; ; day = (day + 1) % DAY_NAMES.length) {
      days.add(day);
      if (day === last) break;
    }
  }
  return { ok: true, value: [...days].sort((a, b) => a - b) };
}

function parseHours(text: string): Parsed<{ startMinute: number; endMinute: number }> {
  const match = /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(text);
  if (match === null) return { ok: false, error: HOURS_EXPECTED };
  const [, startHour = '', startMinutes = '', endHour = '', endMinutes = ''] = match;
  const start = minuteOfDay(startHour, startMinutes);
  if (!start.ok) return start;
  const end = minuteOfDay(endHour, endMinutes);
  if (!end.ok) return end;
  if (start.value === MINUTES_PER_DAY) {
    return { ok: false, error: 'expected 24:00 only as an end time (a window from midnight starts at 00:00)' };
  }
  if (start.value === end.value) {
    return { ok: false, error: 'expected different start and end times (00:00-24:00 for a whole day)' };
  }
  return { ok: true, value: { startMinute: start.value, endMinute: end.value } };
}

function minuteOfDay(hour: string, minute: string): Parsed<number> {
  const written = `${hour}:${minute}`;
  if (Number(minute) > 59) return { ok: false, error: `expected minutes from 00 to 59 (${written} is not a time)` };
  const value = Number(hour) * 60 + Number(minute);
  if (value > MINUTES_PER_DAY) return { ok: false, error: `expected times from 00:00 to 24:00 (${written} is past 24:00)` };
  return { ok: true, value };
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch (error) {
    // RangeError is Intl's answer for a name it does not know; anything else is a real fault.
    if (error instanceof RangeError) return false;
    throw error;
  }
}

const scheduleWindow = z
  .strictObject({
    days: textField(DAYS_EXPECTED, parseDays),
    hours: textField(HOURS_EXPECTED, parseHours),
    limit: rate('pause'),
  })
  .transform(
    ({ days, hours, limit }): ScheduleWindow => ({
      days: days.value,
      startMinute: hours.value.startMinute,
      endMinute: hours.value.endMinute,
      limit,
      label: `${days.text} ${hours.text}`,
    }),
  );

export const schedule: z.ZodType<Schedule, unknown> = z
  .strictObject({
    timezone: z.string({ error: TIMEZONE_EXPECTED }).refine(isTimeZone, { error: TIMEZONE_EXPECTED }),
    windows: z
      .array(scheduleWindow, { error: 'expected a list of windows, each with days, hours and limit' })
      .min(1, { error: 'expected at least one window (or no schedule at all)' }),
  })
  .superRefine((value, ctx) => {
    for (const { index, other, day } of overlaps(value.windows)) {
      ctx.addIssue({
        code: 'custom',
        path: ['windows', index],
        message: `overlaps windows[${other}] (${value.windows[other]?.label}) on ${DAY_NAMES[day]}`,
      });
    }
  });

/** A stretch of one window's time, in minutes from Monday 00:00. */
interface Stretch {
  from: number;
  until: number;
}

/** The part of a window past midnight belongs to the next day, and Sunday's next day is Monday. */
function stretchesOfWeek(window: ScheduleWindow): Stretch[] {
  return window.days.flatMap((day) => {
    const midnight = day * MINUTES_PER_DAY;
    if (window.endMinute > window.startMinute) {
      return [{ from: midnight + window.startMinute, until: midnight + window.endMinute }];
    }
    const nextMidnight = ((day + 1) % DAY_NAMES.length) * MINUTES_PER_DAY;
    return [
      { from: midnight + window.startMinute, until: midnight + MINUTES_PER_DAY },
      { from: nextMidnight, until: nextMidnight + window.endMinute },
    ];
  });
}

/** Each window that overlaps an earlier one, with the first such window and the first day they share. */
function overlaps(windows: readonly ScheduleWindow[]): { index: number; other: number; day: number }[] {
  const stretches = windows.map(stretchesOfWeek);
  const found: { index: number; other: number; day: number }[] = [];
  stretches.forEach((mine, index) => {
    for (let other = 0; other < index; other += 1) {
      const shared = mine.flatMap((a) =>
        (stretches[other] ?? []).filter((b) => a.from < b.until && b.from < a.until).map((b) => Math.max(a.from, b.from)),
      );
      if (shared.length > 0) {
        found.push({ index, other, day: Math.floor(Math.min(...shared) / MINUTES_PER_DAY) });
        return;
      }
    }
  });
  return found;
}
