import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { errorMap, toConfigError } from '../../src/config/issues.js';
import { type Schedule, schedule } from '../../src/config/schedule.js';

// Nested as in the config file, so each message carries the full key path.
const config = z.strictObject({ uploads: z.strictObject({ schedule }) });

function read(yaml: string): Schedule {
  const result = config.safeParse(parseYaml(yaml), { error: errorMap, reportInput: true });
  if (!result.success) throw new Error(toConfigError(result.error).message);
  return result.data.uploads.schedule;
}

function problem(yaml: string): string {
  const result = config.safeParse(parseYaml(yaml), { error: errorMap, reportInput: true });
  if (result.success) throw new Error('expected the schedule to be refused');
  return toConfigError(result.error).message;
}

/** A Berlin schedule with these windows, one flow mapping per line. */
function withWindows(...windows: string[]): string {
  return `uploads:\n  schedule:\n    timezone: Europe/Berlin\n    windows:\n${windows.map((window) => `      - { ${window} }\n`).join('')}`;
}

function window(yaml: string) {
  return read(withWindows(yaml)).windows[0];
}

describe('uploads.schedule', () => {
  it("reads a studio's week", () => {
    expect(
      read(`
uploads:
  schedule:
    timezone: Europe/Berlin
    windows:
      - days: Mon-Fri
        hours: 09:00-19:00
        limit: 2 MB/s
      - days: Fri
        hours: 22:00-06:00
        limit: pause
      - days: Sat-Sun
        hours: 10:00-24:00
        limit: off
`),
    ).toEqual({
      timezone: 'Europe/Berlin',
      windows: [
        { days: [0, 1, 2, 3, 4], startMinute: 540, endMinute: 1140, limit: 2_000_000, label: 'Mon-Fri 09:00-19:00' },
        { days: [4], startMinute: 1320, endMinute: 360, limit: 'pause', label: 'Fri 22:00-06:00' },
        { days: [5, 6], startMinute: 600, endMinute: 1440, limit: null, label: 'Sat-Sun 10:00-24:00' },
      ],
    });
  });

  it.each<[string, number[]]>([
    ['Mon-Fri', [0, 1, 2, 3, 4]],
    ['Sat', [5]],
    ['Sun', [6]],
    ['Mon,Wed,Fri', [0, 2, 4]],
    ['Mon, Wed, Fri', [0, 2, 4]],
    ['Fri-Mon', [0, 4, 5, 6]],
    ['Sun-Sun', [6]],
    ['Mon - Wed,Sat', [0, 1, 2, 5]],
    ['Mon-Wed,Tue-Thu', [0, 1, 2, 3]],
    ['mon-FRI', [0, 1, 2, 3, 4]],
  ])('reads days %j', (days, expected) => {
    expect(window(`days: "${days}", hours: 09:00-10:00, limit: 1 MB/s`)?.days).toEqual(expected);
  });

  it.each<[string, number, number]>([
    ['09:00-19:00', 540, 1140],
    ['9:30-17:45', 570, 1065],
    ['00:00-24:00', 0, 1440],
    ['18:00-24:00', 1080, 1440],
    ['22:00-06:00', 1320, 360],
    ['22:00-00:00', 1320, 0],
    ['09:00 - 19:00', 540, 1140],
  ])('reads hours %j', (hours, startMinute, endMinute) => {
    expect(window(`days: Mon, hours: "${hours}", limit: 1 MB/s`)).toMatchObject({ startMinute, endMinute });
  });

  it('keeps days and hours as written for the label', () => {
    expect(window('days: "mon - wed", hours: "9:00-17:00", limit: 1 MB/s')?.label).toBe('mon - wed 9:00-17:00');
  });

  it.each<[string, string | number | null]>([
    ['limit: 20 Mbit/s', 2_500_000],
    ['limit: 512 KiB/s', 524_288],
    ['limit: 100000', 100_000],
    ['limit: off', null],
    ['limit: pause', 'pause'],
  ])('reads %s', (limit, expected) => {
    expect(window(`days: Mon, hours: 09:00-10:00, ${limit}`)?.limit).toEqual(expected);
  });

  it('accepts any zone Intl knows, as written', () => {
    const yaml = (timezone: string) => `uploads:\n  schedule:\n    timezone: ${timezone}\n    windows: [{ days: Mon, hours: 09:00-10:00, limit: pause }]\n`;
    expect(read(yaml('America/New_York')).timezone).toBe('America/New_York');
    expect(read(yaml('UTC')).timezone).toBe('UTC');
  });

  it('allows windows that touch without overlapping', () => {
    const week = read(
      withWindows(
        'days: Mon-Fri, hours: 09:00-19:00, limit: 2 MB/s',
        'days: Mon-Fri, hours: 19:00-22:00, limit: 4 MB/s',
        'days: Fri, hours: 22:00-06:00, limit: pause',
        'days: Sat, hours: 06:00-24:00, limit: off',
        'days: Sun, hours: 00:00-09:00, limit: off',
        'days: Sun, hours: 22:00-09:00, limit: pause',
      ),
    );
    expect(week.windows).toHaveLength(6);
  });
});

describe('uploads.schedule refusals name the key', () => {
  const key = 'config: uploads.schedule';
  const dayNames = 'expected days from Mon, Tue, Wed, Thu, Fri, Sat, Sun, as in "Mon-Fri" or "Mon,Wed,Fri"';
  const hours = 'expected hours such as "09:00-19:00" (HH:MM-HH:MM, 24-hour clock)';
  const zone = 'expected an IANA time zone such as "Europe/Berlin": the studio\'s, which this machine\'s own zone may not be';

  it.each<[string, string, string]>([
    ['a window without a zone', 'uploads:\n  schedule:\n    windows: [{ days: Mon, hours: 09:00-10:00, limit: pause }]\n', `${key}.timezone: missing, ${zone}`],
    ['an unknown zone', 'uploads:\n  schedule:\n    timezone: Europe/Berlim\n    windows: [{ days: Mon, hours: 09:00-10:00, limit: pause }]\n', `${key}.timezone: ${zone}, got "Europe/Berlim"`],
    ['an offset for a zone', 'uploads:\n  schedule:\n    timezone: "+01:00"\n    windows: [{ days: Mon, hours: 09:00-10:00, limit: pause }]\n', `${key}.timezone: ${zone}, got "+01:00"`],
    ['no windows key', 'uploads:\n  schedule:\n    timezone: Europe/Berlin\n', `${key}.windows: missing, expected a list of windows, each with days, hours and limit`],
    ['an empty window list', 'uploads:\n  schedule:\n    timezone: Europe/Berlin\n    windows: []\n', `${key}.windows: expected at least one window (or no schedule at all), got an empty list`],
    ['a misspelt schedule key', 'uploads:\n  schedule:\n    timezone: Europe/Berlin\n    window: []\n', `${key}.window: unknown key (did you mean "windows"?)`],
  ])('%s', (_, yaml, message) => {
    expect(problem(yaml)).toBe(message);
  });

  it.each<[string, string, string]>([
    ['an unknown day', 'days: Mo-Fr, hours: 09:00-10:00, limit: pause', `${key}.windows[0].days: ${dayNames} ("Mo" is not one), got "Mo-Fr"`],
    ['a full day name', 'days: Monday, hours: 09:00-10:00, limit: pause', `${key}.windows[0].days: ${dayNames} ("Monday" is not one), got "Monday"`],
    ['an empty item', 'days: "Mon,,Fri", hours: 09:00-10:00, limit: pause', `${key}.windows[0].days: ${dayNames} ("" is not one), got "Mon,,Fri"`],
    ['a range of three', 'days: Mon-Wed-Fri, hours: 09:00-10:00, limit: pause', `${key}.windows[0].days: expected days such as "Mon-Fri", "Sat", "Mon,Wed,Fri" or "Fri-Mon" ("Mon-Wed-Fri" is not a day or a range), got "Mon-Wed-Fri"`],
    ['days as a list', 'days: [Mon, Tue], hours: 09:00-10:00, limit: pause', `${key}.windows[0].days: expected days such as "Mon-Fri", "Sat", "Mon,Wed,Fri" or "Fri-Mon", got a list`],
    ['an hour past 24', 'days: Mon, hours: 22:00-25:00, limit: pause', `${key}.windows[0].hours: expected times from 00:00 to 24:00 (25:00 is past 24:00), got "22:00-25:00"`],
    ['minute 60', 'days: Mon, hours: 12:60-13:00, limit: pause', `${key}.windows[0].hours: expected minutes from 00 to 59 (12:60 is not a time), got "12:60-13:00"`],
    ['24:30', 'days: Mon, hours: 22:00-24:30, limit: pause', `${key}.windows[0].hours: expected times from 00:00 to 24:00 (24:30 is past 24:00), got "22:00-24:30"`],
    ['24:00 as a start', 'days: Mon, hours: 24:00-06:00, limit: pause', `${key}.windows[0].hours: expected 24:00 only as an end time (a window from midnight starts at 00:00), got "24:00-06:00"`],
    ['an empty window', 'days: Mon, hours: 09:00-09:00, limit: pause', `${key}.windows[0].hours: expected different start and end times (00:00-24:00 for a whole day), got "09:00-09:00"`],
    ['midnight to midnight', 'days: Mon, hours: 00:00-00:00, limit: pause', `${key}.windows[0].hours: expected different start and end times (00:00-24:00 for a whole day), got "00:00-00:00"`],
    ['hours without minutes', 'days: Mon, hours: 9-17, limit: pause', `${key}.windows[0].hours: ${hours}, got "9-17"`],
    ['one time only', 'days: Mon, hours: "09:00", limit: pause', `${key}.windows[0].hours: ${hours}, got "09:00"`],
    ['an ambiguous unit', 'days: Mon, hours: 09:00-10:00, limit: 20 Mbps', `${key}.windows[0].limit: expected "20 Mbit/s" (bits) or "20 MB/s" (bytes), got "20 Mbps"`],
    ['a word that is no limit', 'days: Mon, hours: 09:00-10:00, limit: stop', `${key}.windows[0].limit: expected a rate such as "4 MB/s", "20 Mbit/s", "512 KiB/s", "off" or "pause", got "stop"`],
    ['a zero limit', 'days: Mon, hours: 09:00-10:00, limit: 0', `${key}.windows[0].limit: expected at least 1 kB/s (1000 bytes per second), or "off" for no limit, got 0`],
    ['no limit', 'days: Mon, hours: 09:00-10:00', `${key}.windows[0].limit: missing, expected a rate such as "4 MB/s", "20 Mbit/s", "512 KiB/s", "off" or "pause"`],
    ['a misspelt window key', 'days: Mon, hours: 09:00-10:00, limits: pause', `${key}.windows[0].limits: unknown key (did you mean "limit"?)`],
  ])('%s', (_, yaml, message) => {
    expect(problem(withWindows(yaml))).toBe(message);
  });

  it.each<[string, string[], string]>([
    [
      'the same hours on a shared day',
      ['days: Mon-Fri, hours: 09:00-19:00, limit: 2 MB/s', 'days: Tue, hours: 18:00-20:00, limit: 1 MB/s'],
      'windows[1]: overlaps windows[0] (Mon-Fri 09:00-19:00) on Tuesday',
    ],
    [
      'the first shared day',
      ['days: Mon-Fri, hours: 09:00-19:00, limit: 2 MB/s', 'days: "Sat-Sun,Wed-Thu", hours: 10:00-11:00, limit: 1 MB/s'],
      'windows[1]: overlaps windows[0] (Mon-Fri 09:00-19:00) on Wednesday',
    ],
    [
      'the part past midnight, on the next day',
      ['days: Fri, hours: 22:00-06:00, limit: pause', 'days: Sat, hours: 05:00-08:00, limit: 1 MB/s'],
      'windows[1]: overlaps windows[0] (Fri 22:00-06:00) on Saturday',
    ],
    [
      "Sunday night's part on Monday",
      ['days: Mon, hours: 01:00-03:00, limit: 1 MB/s', 'days: Sun, hours: 22:00-02:00, limit: pause'],
      'windows[1]: overlaps windows[0] (Mon 01:00-03:00) on Monday',
    ],
    [
      'a day range that wraps',
      ['days: Fri-Mon, hours: 08:00-09:00, limit: 1 MB/s', 'days: Sun, hours: 08:30-10:00, limit: pause'],
      'windows[1]: overlaps windows[0] (Fri-Mon 08:00-09:00) on Sunday',
    ],
    [
      'the earlier window, when two are overlapped',
      [
        'days: Mon, hours: 09:00-10:00, limit: 1 MB/s',
        'days: Tue, hours: 09:00-10:00, limit: 1 MB/s',
        'days: Mon-Tue, hours: 09:30-09:45, limit: pause',
      ],
      'windows[2]: overlaps windows[0] (Mon 09:00-10:00) on Monday',
    ],
  ])('refuses overlaps: %s', (_, windows, message) => {
    expect(problem(withWindows(...windows))).toBe(`${key}.${message}`);
  });
});
